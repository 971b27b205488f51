-- One page of the board with the published version and the number of users, read at once.
-- KEYS: board (zset), names (hash), version (counter)
-- ARGV: index of the first row, index of the last row (0-based, inclusive)
-- Reply: version, total, then userId, username, score for each row (scores as exact strings)
local rows = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
local reply = {redis.call('GET', KEYS[3]) or '0', redis.call('ZCARD', KEYS[1])}
for j = 1, #rows, 2 do
  -- Members are '<16-digit seq>:<userId>', scored by -total (see apply.lua).
  local user = string.sub(rows[j], 18)
  reply[#reply + 1] = user
  reply[#reply + 1] = redis.call('HGET', KEYS[2], user) or user
  -- Lua prints numbers with 14 significant digits; '%.0f' keeps all 16.
  reply[#reply + 1] = string.format('%.0f', -tonumber(rows[j + 1]))
end
return reply
