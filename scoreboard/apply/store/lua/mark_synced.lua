-- Record that the board matches the ledger on the server running this; 0 and nothing written
-- when that is not the server the caller rebuilt the board on (a failover in between).
-- KEYS: synced (string)
-- ARGV: the run id of the server the board was rebuilt on, '' for whichever runs this
local here = server_id()
if ARGV[1] ~= '' and ARGV[1] ~= here then return 0 end
redis.call('SET', KEYS[1], here)
return 1
