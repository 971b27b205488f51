-- Shared by the scripts that change the board (prepended to each when it is loaded).
-- Store the top n as JSON in top_key and bump version_key, if the top changed.
-- Returns the new version and the JSON, or nil when the top is unchanged.
-- sign: -1 when members are scored by -value (higher ranks first), 1 when by value.
local function publish_top(board, names, version_key, top_key, n, sign)
  local rows = redis.call('ZRANGE', board, 0, n - 1, 'WITHSCORES')
  local top = {}
  for j = 1, #rows, 2 do
    local user = string.sub(rows[j], 18)
    -- Scores travel as strings: cjson would round them to 14 digits.
    top[#top + 1] = {user, redis.call('HGET', names, user), string.format('%.0f', sign * tonumber(rows[j + 1]))}
  end
  local encoded = cjson.encode(top)
  if encoded == redis.call('GET', top_key) then return nil end
  local version = redis.call('INCR', version_key)
  redis.call('SET', top_key, encoded)
  return version, encoded
end

