-- 1 when the board matched the ledger on the server running this (the synced key holds that
-- server's run id), else 0: the key is gone, or was written by a server since restarted or
-- replaced by a promoted replica, which may lack acknowledged writes.
-- KEYS: synced (string)
if redis.call('GET', KEYS[1]) == server_id() then return 1 end
return 0
