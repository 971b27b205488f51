-- Apply a batch of updates exactly once, then publish the top N if it changed.
-- KEYS: board (zset), members (hash), names (hash), seq (counter), version (counter), top (string),
--       synced (string: set once the board matches the ledger), pending (set of the ids of
--       updates accepted in this season and not applied yet), the board's live season number
-- ARGV: dedup key prefix, dedup ttl, top n, require synced ('1' with a ledger), forget grace
--       seconds, operator (incr, best or set), sign, this season ('' on `global`, which has no
--       seasons), k, then k message ids to forget (see forget_applied.lua), then per update:
--       messageId, userId, username, value, sequence ('' to draw one from the seq counter)
--
-- A season that is no longer live takes its late updates (they count where they were accepted)
-- but publishes no new top: its subscribers watch the new season now.
--
-- Board members are '<16-digit seq>:<userId>' scored by sign * value: sign is -1 on a board
-- where higher ranks first, 1 where lower does. ZRANGE then lists the best value first and,
-- among equal values, whoever reached that value first (lowest seq): a member's seq changes
-- only when its value does.
local board, members, names = KEYS[1], KEYS[2], KEYS[3]
local operator, sign = ARGV[6], tonumber(ARGV[7])
local season = ARGV[8]
local forgotten = tonumber(ARGV[9])
local first = 10 + forgotten
-- Earlier batches' business, done whatever becomes of this one.
forget_applied(ARGV[1], tonumber(ARGV[5]), 10, 9 + forgotten)
-- Redis lost the board the ledger holds: the caller must rebuild it before applying anything.
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[7]) == 0 then return {-2, 0} end
-- A script that fails half-way keeps its earlier writes, so check everything before writing.
for i = first, #ARGV, 5 do
  if not tonumber(ARGV[i + 3]) then return {-1, (i - first) / 5} end
  local old = redis.call('HGET', members, ARGV[i + 1])
  if old and not redis.call('ZSCORE', board, old) then return {-1, (i - first) / 5} end
end
local applied = 0
for i = first, #ARGV, 5 do
  local user = ARGV[i + 1]
  if season ~= '' then redis.call('SREM', KEYS[8], ARGV[i]) end
  if redis.call('SET', ARGV[1] .. ARGV[i], 'applied', 'NX', 'EX', ARGV[2]) then
    local value = tonumber(ARGV[i + 3])
    local seq = tonumber(ARGV[i + 4])
    local old = redis.call('HGET', members, user)
    local current = old and sign * tonumber(redis.call('ZSCORE', board, old))
    local new = value
    if operator == 'incr' then
      new = (current or 0) + value
    elseif current and (current == value or (operator == 'best' and current * -sign > value * -sign)) then
      new = nil  -- no better, or the same: the user keeps the place they reached first
    end
    if new then
      if old then
        redis.call('ZREM', board, old)
        -- Workers may apply a user's ledger entries out of order; the latest entry counts.
        if seq then seq = math.max(seq, tonumber(string.sub(old, 1, 16))) end
      end
      seq = seq or redis.call('INCR', KEYS[4])
      local member = string.format('%016.0f:', seq) .. user
      redis.call('ZADD', board, string.format('%.0f', sign * new), member)
      redis.call('HSET', members, user, member)
    end
    redis.call('HSET', names, user, ARGV[i + 2])
    applied = applied + 1
  end
end
if applied == 0 then return {0, 0} end
if season ~= '' and (redis.call('GET', KEYS[9]) or '1') ~= season then return {applied, 0} end
local version, encoded = publish_top(board, names, KEYS[5], KEYS[6], tonumber(ARGV[3]), sign)
if not version then return {applied, 0} end
return {applied, version, encoded}
