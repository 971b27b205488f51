-- Give a board's seasons back to a Redis that lost them, as PostgreSQL recorded them: only when
-- the live number is missing, so of any number of callers one restores and the others change
-- nothing (nor does a caller whose record is older than a move made since).
-- KEYS: the live season number, its start, the highest season archived
-- ARGV: live number, its start ('' when not recorded), highest archived, the board's key prefix,
--       the name of the mark of a lost `pending` set, then per season ended and not archived yet:
--       number, started ('' when not recorded), ended (ISO 8601)
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[3], ARGV[3])
for i = 6, #ARGV, 3 do
  local season = ARGV[4] .. 's' .. ARGV[i] .. ':'
  redis.call('SET', season .. 'started', ARGV[i + 1])
  redis.call('SET', season .. 'ended', ARGV[i + 2])
end
-- Which of their updates were still to come is lost: the closer waits for them the whole wait.
for season = tonumber(ARGV[3]) + 1, tonumber(ARGV[1]) do
  redis.call('SET', ARGV[4] .. 's' .. season .. ':' .. ARGV[5], 1)
end
return 1
