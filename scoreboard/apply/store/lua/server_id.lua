-- The run id of the Redis process running the script. A restarted server, or a replica that
-- Sentinel promoted, has another one than the server that acknowledged the writes it may lack
-- (replication is asynchronous). '' where INFO shows none: then no change is ever seen.
local function server_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
end
