-- Cancel an update whose publish failed, unless a worker applied (or, with a ledger, claimed) it.
-- KEYS: the message's deduplication key, accepted (hash), pending (set of its season)
-- ARGV: userId, value, ttl seconds, the board's operator, messageId
if redis.call('SET', KEYS[1], 'cancelled', 'NX', 'EX', ARGV[3]) then
  if ARGV[4] == 'incr' then
    redis.call('HINCRBY', KEYS[2], ARGV[1], '-' .. ARGV[2])
  else
    -- What the user had before cannot be told from here: the next reservation starts again
    -- from the applied value.
    redis.call('HDEL', KEYS[2], ARGV[1])
  end
  redis.call('SREM', KEYS[3], ARGV[5])
  return 1
end
return 0
