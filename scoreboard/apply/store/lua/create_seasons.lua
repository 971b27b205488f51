-- A new board's seasons: season 1 is live from now, and matches the ledger on this server (it
-- is empty, see synced.lua). Not NX on the number: an update still queued for a board removed
-- under this id may have left its season behind. Two nodes creating the board at once both set 1.
-- KEYS: the live season number, its start (NX: the first start stands), season 1's synced mark
-- ARGV: the first season's number, its start (ISO 8601)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'NX')
redis.call('SET', KEYS[3], server_id())
return 1
