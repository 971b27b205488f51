-- Cancel an update whose publish failed, unless a worker applied it already.
-- KEYS: the message's deduplication key, accepted (hash)
-- ARGV: userId, increment, ttl seconds
if redis.call('SET', KEYS[1], 'cancelled', 'NX', 'EX', ARGV[3]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], '-' .. ARGV[2])
  return 1
end
return 0
