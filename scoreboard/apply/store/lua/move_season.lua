-- Close a board's live season n and start n + 1, only if n is still live (compare and set):
-- of any number of callers that saw season n, exactly one moves it.
-- KEYS: the live season number (absent: 1), the live season's start
-- ARGV: n, when n ended, when n + 1 starts (ISO 8601), the board's key prefix, the name of the
--       mark of a season whose keys match the ledger (n + 1 starts empty, so it does)
-- Returns 0 when the live season is not n, else the version n + 1 starts at: one above n's
-- last, so a client that keeps the highest version it saw of the board takes the new season.
local live = tonumber(redis.call('GET', KEYS[1]) or '1')
if live ~= tonumber(ARGV[1]) then return 0 end
local old, new = ARGV[4] .. 's' .. live .. ':', ARGV[4] .. 's' .. (live + 1) .. ':'
local version = tonumber(redis.call('GET', old .. 'version') or '0') + 1
redis.call('SET', old .. 'started', redis.call('GET', KEYS[2]) or '')
redis.call('SET', old .. 'ended', ARGV[2])
redis.call('SET', new .. 'version', version)
redis.call('SET', new .. ARGV[5], server_id())  -- matches the ledger here (see synced.lua)
redis.call('SET', KEYS[1], live + 1)
redis.call('SET', KEYS[2], ARGV[3])
return version
