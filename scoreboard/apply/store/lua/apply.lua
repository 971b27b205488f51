-- Apply a batch of updates exactly once, then publish the top N if it changed.
-- KEYS: board (zset), members (hash), names (hash), seq (counter), version (counter), top (string),
--       synced (string: the run id of the server on which the board matched the ledger, see
--       synced.lua), pending (set of the ids of
--       updates accepted in this season and not applied yet), the board's live season number,
--       latest (hash: userId -> acceptance order of the newest `set` applied)
-- ARGV: dedup key prefix, dedup ttl, top n, require synced ('1' with a ledger), forget grace
--       seconds, operator (incr, best or set), sign, this season ('' on `global`, which has no
--       seasons), k, then k message ids to forget (see forget_applied.lua), then per update:
--       messageId, userId, username, value, sequence ('' to draw one from the seq counter)
--
-- The sequence is the update's acceptance order on boards other than `global` (reserve.lua),
-- the ledger's entry id on `global` with a ledger. Workers may apply a user's updates in any
-- order: the value must not depend on it. `incr` adds up the same in any order; `best` keeps
-- the best value, reached at the earliest sequence that posted it; a `set` older than the newest
-- one applied is skipped (boards/values.py holds the same rules for the ledger).
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
-- Redis lost the board the ledger holds, or may have lost some of its writes (this server
-- restarted, or is a replica promoted since): the caller must rebuild it before applying anything.
if ARGV[4] == '1' and redis.call('GET', KEYS[7]) ~= server_id() then return {-2, 0} end
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
  local dedup = ARGV[1] .. ARGV[i]
  local state = redis.call('GET', dedup)
  -- 'claimed': recorded in the ledger by a worker (claim.lua), not applied yet.
  if not state or state == 'claimed' then
    redis.call('SET', dedup, 'applied', 'EX', ARGV[2])
    local value = tonumber(ARGV[i + 3])
    local seq = tonumber(ARGV[i + 4])
    local stale = false
    if operator == 'set' and seq then
      stale = seq < tonumber(redis.call('HGET', KEYS[10], user) or '0')
      if not stale then redis.call('HSET', KEYS[10], user, ARGV[i + 4]) end
    end
    local old = redis.call('HGET', members, user)
    local current = old and sign * tonumber(redis.call('ZSCORE', board, old))
    local reached = old and tonumber(string.sub(old, 1, 16))
    local new = value
    if stale then
      new = nil
    elseif operator == 'incr' then
      new = (current or 0) + value
      -- The total is reached by the newest update counted, whatever order they came in.
      if seq and reached then seq = math.max(seq, reached) end
    elseif current == value then
      -- The same value: the user keeps the place they reached first, unless (`best`) this
      -- update, applied late, reached it earlier.
      if not (operator == 'best' and seq and seq < reached) then new = nil end
    elseif current and operator == 'best' and current * -sign > value * -sign then
      new = nil
    end
    if new then
      if old then redis.call('ZREM', board, old) end
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
