-- Admit a group of score updates, in order: count each against its user's rate limit, then
-- count it as accepted in its board's live season. Returns four numbers per update:
--   0, the user's value on the board once it is applied, the season, its acceptance order
--   1, 0, 0, 0                               refused: the value would pass the cap (not counted)
--   2, milliseconds until a request is let in, 0, 0   refused: over the rate limit (not counted)
--   3, 0, 0, 0                               refused: Redis lost the board's live season number
-- An update with operator '' is a refused request that only counts against the limit (0, 0, 0, 0).
-- KEYS: the deployment's last acceptance order (string)
-- ARGV: max total (an incr board's cap), rate window key prefix, then per update:
--       board key prefix, seasonal ('1': the board has seasons, its live one is the number at
--       <prefix>season (absent: 1) and its keys are under <prefix>s<n>:; '2': the same, but
--       absent means lost (a ledger records every board's number); '0': `global`, whose
--       keys are under the prefix itself), messageId, userId, value, operator (incr, best, set or ''),
--       sign (-1: higher ranks first, 1: lower first), limit amount ('' for none), limit
--       window in milliseconds
--
-- The season is read here, in the same call that counts the update as accepted and adds its id
-- to the season's `pending` set: an update is in the season that was live when it was accepted,
-- and the season closer (scoreboard/boards/season_closer.py) sees it pending until a worker
-- applies it (apply.lua) or its publish is cancelled (release.lua). A set, not a counter: an
-- update applied twice, or never reserved here (queued by an older version), changes nothing.
--
-- The acceptance order (boards other than `global`; 0 there) tells workers, which may apply a
-- user's updates in any order, which came last: apply.lua skips a `set` older than the user's
-- newest applied one, and orders equal values by it. Microseconds of the Redis clock, raised
-- past the last one handed out: it only grows, also when Redis loses the key.
--
-- The rate limit is a moving window per user, across every board: a list of request times,
-- newest first, at most `amount` long. A request is let in when the amount-th newest is older
-- than the window.
local max_total = tonumber(ARGV[1])
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local accepted = {}
local results = {}
local last_order = tonumber(redis.call('GET', KEYS[1]) or '0')
local clock = now[1] * 1000000 + now[2]
local ordered = false

local function admitted(user, amount, window)
  if amount == '' then return 0 end
  local key = ARGV[2] .. user
  amount, window = tonumber(amount), tonumber(window)
  local oldest = redis.call('LINDEX', key, amount - 1)
  if oldest and tonumber(oldest) > now_ms - window then
    return math.max(1, tonumber(oldest) + window - now_ms)
  end
  redis.call('LPUSH', key, now_ms)
  redis.call('LTRIM', key, 0, amount - 1)
  redis.call('PEXPIRE', key, window)
  return 0
end

-- The user's value counting every update accepted so far, or nil when they have none.
local function accepted_value(prefix, user, sign)
  local value = redis.call('HGET', prefix .. 'accepted', user)
  if value then return tonumber(value) end
  -- No reservation yet (e.g. the board was restored): start from the applied value.
  local member = redis.call('HGET', prefix .. 'members', user)
  return member and sign * tonumber(redis.call('ZSCORE', prefix .. 'board', member)) or nil
end

local function add(code, value, season, order)
  local n = #results
  results[n + 1], results[n + 2], results[n + 3], results[n + 4] = code, value, season, order or 0
end

for i = 3, #ARGV, 9 do
  local prefix, seasonal, message = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local user, value = ARGV[i + 3], tonumber(ARGV[i + 4])
  local operator, sign = ARGV[i + 5], tonumber(ARGV[i + 6])
  local season, live = 1, nil
  if seasonal ~= '0' then
    live = redis.call('GET', prefix .. 'season')
    season = tonumber(live or '1')
    prefix = prefix .. 's' .. season .. ':'
  end
  local slot = prefix .. '\0' .. user
  local lost = seasonal == '2' and not live
  -- Not counted against the limit when the season is lost: the caller tries again.
  local wait = lost and 0 or admitted(user, ARGV[i + 7], ARGV[i + 8])
  if lost then
    add(3, 0, 0)  -- the caller restores the number from the ledger, then tries again
  elseif wait > 0 then
    add(2, wait, 0)
  elseif operator == '' then
    add(0, 0, 0)
  else
    local old = accepted[slot]
    if old == nil then old = accepted_value(prefix, user, sign) or false end
    local new
    if operator == 'incr' then
      new = (old or 0) + value
    elseif operator == 'best' and old and old * -sign >= value * -sign then
      new = old  -- not better: the board keeps the value reached first
    else
      new = value
    end
    if operator == 'incr' and new > max_total then
      add(1, 0, 0)
      accepted[slot] = old
    else
      accepted[slot] = new
      -- Lua prints numbers with 14 significant digits; '%.0f' keeps all 16.
      redis.call('HSET', prefix .. 'accepted', user, string.format('%.0f', new))
      local order = 0
      if seasonal ~= '0' then
        redis.call('SADD', prefix .. 'pending', message)
        last_order = math.max(clock, last_order + 1)
        order, ordered = last_order, true
      end
      add(0, new, season, order)
    end
  end
end
if ordered then redis.call('SET', KEYS[1], string.format('%.0f', last_order)) end
return results
