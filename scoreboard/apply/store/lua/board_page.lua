-- One page of the board with the published version and the number of users, read at once.
-- KEYS: board (zset), names (hash), version (counter)
-- ARGV: index of the first row, index of the last row (0-based, inclusive), sign (see apply.lua)
-- Reply: version, total, then userId, username, score for each row (scores as exact strings)
local reply = {redis.call('GET', KEYS[3]) or '0', redis.call('ZCARD', KEYS[1])}
return append_rows(reply, KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]))
