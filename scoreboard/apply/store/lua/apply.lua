-- Apply a batch of updates exactly once, then publish the top N if it changed.
-- KEYS: board (zset), members (hash), names (hash), seq (counter), version (counter), top (string),
--       synced (string: set once the board matches the ledger)
-- ARGV: dedup key prefix, dedup ttl, top n, require synced ('1' with a ledger), forget grace
--       seconds, k, then k message ids to forget (see forget_applied.lua), then per update:
--       messageId, userId, username, increment, sequence ('' to draw one from the seq counter)
--
-- Board members are '<16-digit seq>:<userId>' scored by -total: ZRANGE then lists the highest
-- total first and, among equal totals, whoever reached that total first (lowest seq).
local board, members, names = KEYS[1], KEYS[2], KEYS[3]
local forgotten = tonumber(ARGV[6])
local first = 7 + forgotten
-- Earlier batches' business, done whatever becomes of this one.
forget_applied(ARGV[1], tonumber(ARGV[5]), 7, 6 + forgotten)
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
  if redis.call('SET', ARGV[1] .. ARGV[i], 'applied', 'NX', 'EX', ARGV[2]) then
    local total = tonumber(ARGV[i + 3])
    local seq = tonumber(ARGV[i + 4])
    local old = redis.call('HGET', members, user)
    if old then
      total = total - tonumber(redis.call('ZSCORE', board, old))
      redis.call('ZREM', board, old)
      -- Workers may apply a user's ledger entries out of order; the latest entry counts.
      if seq then seq = math.max(seq, tonumber(string.sub(old, 1, 16))) end
    end
    seq = seq or redis.call('INCR', KEYS[4])
    local member = string.format('%016.0f:', seq) .. user
    redis.call('ZADD', board, string.format('%.0f', -total), member)
    redis.call('HSET', members, user, member)
    redis.call('HSET', names, user, ARGV[i + 2])
    applied = applied + 1
  end
end
if applied == 0 then return {0, 0} end
local version, encoded = publish_top(board, names, KEYS[5], KEYS[6], tonumber(ARGV[3]))
if not version then return {applied, 0} end
return {applied, version, encoded}
