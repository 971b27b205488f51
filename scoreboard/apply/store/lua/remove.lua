-- Take users off the board (an admin's removal or reset), then publish the top N if it changed.
-- KEYS: board (zset), members (hash), names (hash), accepted (hash), version (counter), top (string),
--       latest (hash, see apply.lua)
-- ARGV: top n, sign (see apply.lua), then the userIds to remove (none: remove everyone)
local board, members, names = KEYS[1], KEYS[2], KEYS[3]
local removed = 0
if #ARGV == 2 then
  removed = redis.call('ZCARD', board)
  redis.call('DEL', board, members, names, KEYS[4], KEYS[7])
else
  for i = 3, #ARGV do
    local member = redis.call('HGET', members, ARGV[i])
    if member then
      redis.call('ZREM', board, member)
      removed = removed + 1
    end
    redis.call('HDEL', members, ARGV[i])
    redis.call('HDEL', names, ARGV[i])
    redis.call('HDEL', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[7], ARGV[i])
  end
end
local version, encoded = publish_top(board, names, KEYS[5], KEYS[6], tonumber(ARGV[1]), tonumber(ARGV[2]))
if not version then return {removed, 0} end
return {removed, version, encoded}
