-- Admit a group of score updates, in order: count each against its user's rate limit, then
-- count it as accepted. Returns two numbers per update:
--   0, the user's score once it is applied   accepted
--   1, 0                                     refused: the score would pass the cap (not counted)
--   2, milliseconds until a request is let in refused: over the rate limit (not counted)
-- An update with increment 0 is a refused request that only counts against the limit (0, 0).
-- KEYS: accepted (hash userId -> accepted total), members (hash), board (zset)
-- ARGV: max total, rate window key prefix, then per update:
--       userId, increment, limit amount ('' for none), limit window in milliseconds
--
-- The rate limit is a moving window per user: a list of request times, newest first, at most
-- `amount` long. A request is let in when the amount-th newest is older than the window.
local max_total = tonumber(ARGV[1])
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local totals = {}
local results = {}

local function admitted(user, amount, window)
  if amount == '' then return 0 end
  local key = ARGV[2] .. user
  amount, window = tonumber(amount), tonumber(window)
  local oldest = redis.call('LINDEX', key, amount - 1)
  if oldest and tonumber(oldest) > now - window then
    return math.max(1, tonumber(oldest) + window - now)
  end
  redis.call('LPUSH', key, now)
  redis.call('LTRIM', key, 0, amount - 1)
  redis.call('PEXPIRE', key, window)
  return 0
end

local function accepted_total(user)
  local accepted = redis.call('HGET', KEYS[1], user)
  if accepted then return tonumber(accepted) end
  -- No reservation yet (e.g. the board was restored): start from the applied score.
  local member = redis.call('HGET', KEYS[2], user)
  return member and -tonumber(redis.call('ZSCORE', KEYS[3], member)) or 0
end

for i = 3, #ARGV, 4 do
  local user, increment = ARGV[i], tonumber(ARGV[i + 1])
  local wait = admitted(user, ARGV[i + 2], ARGV[i + 3])
  if wait > 0 then
    results[#results + 1], results[#results + 2] = 2, wait
  elseif increment == 0 then
    results[#results + 1], results[#results + 2] = 0, 0
  else
    local total = totals[user] or accepted_total(user)
    local new_total = total + increment
    if new_total > max_total then
      results[#results + 1], results[#results + 2] = 1, 0
      totals[user] = total
    else
      totals[user] = new_total
      -- Lua prints numbers with 14 significant digits; '%.0f' keeps all 16.
      redis.call('HSET', KEYS[1], user, string.format('%.0f', new_total))
      results[#results + 1], results[#results + 2] = 0, new_total
    end
  end
end
return results
