-- Archive a closed season in place, once: its rows stay where they are, what only a live season
-- needs goes. Of any number of callers, the first records it; the others change nothing more.
-- KEYS: closed seasons (hash: season -> JSON), the season's board (zset), its version
-- ARGV: season, startedAt ('' when not recorded), endedAt, then the keys only a live season needs
local kept = 0
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local closed = {
    startedAt = ARGV[2],
    endedAt = ARGV[3],
    entries = redis.call('ZCARD', KEYS[2]),
    version = tonumber(redis.call('GET', KEYS[3]) or '0'),
  }
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(closed))
  kept = 1
end
for i = 4, #ARGV do redis.call('UNLINK', ARGV[i]) end
return kept
