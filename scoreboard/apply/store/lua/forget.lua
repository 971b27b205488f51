-- Forget applied updates on their own, when no apply script call is coming to carry them.
-- ARGV: dedup key prefix, grace seconds, then the message ids (see forget_applied.lua)
forget_applied(ARGV[1], tonumber(ARGV[2]), 3, #ARGV)
return 0
