-- Apply a batch of updates exactly once, then publish the top N if it changed.
-- KEYS: board (zset), members (hash), names (hash), seq (counter), version (counter), top (string)
-- ARGV: dedup key prefix, dedup ttl, top n, then (messageId, userId, username, increment) per update
--
-- Board members are '<16-digit seq>:<userId>' scored by -total: ZRANGE then lists the highest
-- total first and, among equal totals, whoever reached that total first (lowest seq).
local board, members, names = KEYS[1], KEYS[2], KEYS[3]
-- A script that fails half-way keeps its earlier writes, so check everything before writing.
for i = 4, #ARGV, 4 do
  if not tonumber(ARGV[i + 3]) then return {-1, (i - 4) / 4} end
  local old = redis.call('HGET', members, ARGV[i + 1])
  if old and not redis.call('ZSCORE', board, old) then return {-1, (i - 4) / 4} end
end
local applied = 0
for i = 4, #ARGV, 4 do
  local user = ARGV[i + 1]
  if redis.call('SET', ARGV[1] .. ARGV[i], 'applied', 'NX', 'EX', ARGV[2]) then
    local total = tonumber(ARGV[i + 3])
    local old = redis.call('HGET', members, user)
    if old then
      total = total - tonumber(redis.call('ZSCORE', board, old))
      redis.call('ZREM', board, old)
    end
    local member = string.format('%016.0f:', redis.call('INCR', KEYS[4])) .. user
    redis.call('ZADD', board, string.format('%.0f', -total), member)
    redis.call('HSET', members, user, member)
    redis.call('HSET', names, user, ARGV[i + 2])
    applied = applied + 1
  end
end
if applied == 0 then return {0, 0} end
local rows = redis.call('ZRANGE', board, 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
local top = {}
for j = 1, #rows, 2 do
  local user = string.sub(rows[j], 18)
  -- Scores travel as strings: cjson would round them to 14 digits.
  top[#top + 1] = {user, redis.call('HGET', names, user), string.format('%.0f', -tonumber(rows[j + 1]))}
end
local encoded = cjson.encode(top)
if encoded == redis.call('GET', KEYS[6]) then return {applied, 0} end
local version = redis.call('INCR', KEYS[5])
redis.call('SET', KEYS[6], encoded)
return {applied, version, encoded}
