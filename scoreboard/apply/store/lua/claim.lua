-- Claim a batch's updates before a worker records them in the ledger: a web node whose publish
-- timed out can no longer cancel one (release.lua finds it taken, and the update stands), and
-- one it cancelled already is neither recorded nor applied.
-- ARGV: dedup key prefix, ttl seconds, then the message ids
-- Returns per id 1 when the worker records and applies it, 0 when it was cancelled.
local answers = {}
for i = 3, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  if redis.call('SET', key, 'claimed', 'NX', 'EX', ARGV[2]) then
    answers[#answers + 1] = 1
  elseif redis.call('GET', key) == 'cancelled' then
    answers[#answers + 1] = 0
  else
    answers[#answers + 1] = 1  -- claimed or applied already: a redelivery, counted once
  end
end
return answers
