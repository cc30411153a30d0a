-- List jobs of one state set in score order, with their fields.
-- KEYS[1] the state's zset   ARGV[1] job key prefix   ARGV[2] offset   ARGV[3] limit
-- ARGV[4] a single id to read instead of a range ("" for a range).
-- Returns a list of { id, score, post, platform, version, attempts, state, error, due }.
local ids = {}
if ARGV[4] ~= '' then
  ids = { ARGV[4] }
else
  local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
  ids = redis.call('ZRANGE', KEYS[1], offset, offset + limit - 1)
end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'post', 'platform', 'version', 'attempts', 'state',
    'error', 'due')
  if f[2] then
    local score = redis.call('ZSCORE', KEYS[1], id) or -1
    out[#out + 1] = { id, score, f[1], f[2], f[3], f[4] or 0, f[5] or '', f[6] or '', f[7] or 0 }
  end
end
return out
