-- One user's row and up to N rows on each side, with the published version and the number of
-- users, read at once.
-- KEYS: board (zset), members (hash), names (hash), version (counter)
-- ARGV: userId, rows wanted on each side, sign (see apply.lua)
-- Reply: version, total, and when the user is on the board: the 0-based index of the first row,
-- then userId, username, score for each row (scores as exact strings)
local reply = {redis.call('GET', KEYS[4]) or '0', redis.call('ZCARD', KEYS[1])}
local member = redis.call('HGET', KEYS[2], ARGV[1])
local index = member and redis.call('ZRANK', KEYS[1], member)
if not index then return reply end
local side = tonumber(ARGV[2])
local first = math.max(0, index - side)
reply[3] = first
return append_rows(reply, KEYS[1], KEYS[3], first, index + side, tonumber(ARGV[3]))
