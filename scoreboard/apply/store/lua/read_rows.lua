-- Shared by the read scripts (prepended to each when it is loaded).
-- Append userId, username, score of board rows first..last (0-based) to `reply`.
-- Members are '<16-digit seq>:<userId>', scored by sign * value (see apply.lua).
local function append_rows(reply, board, names, first, last, sign)
  local rows = redis.call('ZRANGE', board, first, last, 'WITHSCORES')
  for j = 1, #rows, 2 do
    local user = string.sub(rows[j], 18)
    reply[#reply + 1] = user
    reply[#reply + 1] = redis.call('HGET', names, user) or user
    -- Lua prints numbers with 14 significant digits; '%.0f' keeps all 16.
    reply[#reply + 1] = string.format('%.0f', sign * tonumber(rows[j + 1]))
  end
  return reply
end

