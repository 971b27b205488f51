-- Count an update as accepted and return the user's resulting score, or -1 past the cap.
-- KEYS: accepted (hash userId -> accepted total), members (hash), board (zset)
-- ARGV: userId, increment, max total
local accepted = redis.call('HGET', KEYS[1], ARGV[1])
local total = 0
if accepted then
  total = tonumber(accepted)
else
  -- No reservation yet (e.g. the board was restored): start from the applied score.
  local member = redis.call('HGET', KEYS[2], ARGV[1])
  if member then total = -tonumber(redis.call('ZSCORE', KEYS[3], member)) end
end
local new_total = total + tonumber(ARGV[2])
if new_total > tonumber(ARGV[3]) then return -1 end
-- Lua prints numbers with 14 significant digits; '%.0f' keeps all 16.
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', new_total))
return new_total
