-- Count a group of updates as accepted, in order; each gets its user's resulting score, or -1
-- when that update would pass the cap (it is then not counted).
-- KEYS: accepted (hash userId -> accepted total), members (hash), board (zset)
-- ARGV: max total, then userId and increment for each update
local max_total = tonumber(ARGV[1])
local totals = {}
local results = {}
for i = 2, #ARGV, 2 do
  local user = ARGV[i]
  local total = totals[user]
  if total == nil then
    local accepted = redis.call('HGET', KEYS[1], user)
    if accepted then
      total = tonumber(accepted)
    else
      -- No reservation yet (e.g. the board was restored): start from the applied score.
      local member = redis.call('HGET', KEYS[2], user)
      total = member and -tonumber(redis.call('ZSCORE', KEYS[3], member)) or 0
    end
  end
  local new_total = total + tonumber(ARGV[i + 1])
  if new_total > max_total then
    results[#results + 1] = -1
  else
    totals[user] = new_total
    -- Lua prints numbers with 14 significant digits; '%.0f' keeps all 16.
    redis.call('HSET', KEYS[1], user, string.format('%.0f', new_total))
    results[#results + 1] = new_total
  end
  totals[user] = totals[user] or total
end
return results
