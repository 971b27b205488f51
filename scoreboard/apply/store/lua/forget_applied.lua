-- Shared by the scripts that forget applied updates (prepended to each when it is loaded).
-- ARGV[first .. last] are ids of applied updates whose messages the queue can no longer deliver
-- again. Their deduplication keys end after `grace` seconds (0: at once). A 'cancelled' key is
-- left alone: a publish the web node gave up on may still arrive.
local function forget_applied(prefix, grace, first, last)
  for i = first, last do
    local key = prefix .. ARGV[i]
    if redis.call('GET', key) == 'applied' then
      if grace > 0 then redis.call('EXPIRE', key, grace) else redis.call('UNLINK', key) end
    end
  end
end
