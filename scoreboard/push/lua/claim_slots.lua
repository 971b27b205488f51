-- Claim the push slot of each board in KEYS, where it is free, for ARGV[i] milliseconds.
-- Returns per key 0 when claimed, else the milliseconds until it may be claimed again.
local waits = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'PX', ARGV[i]) then
    waits[i] = 0
  else
    waits[i] = math.max(redis.call('PTTL', key), 1)
  end
end
return waits
