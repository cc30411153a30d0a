-- List jobs of one state set in score order, with their fields.
-- KEYS[1] the state's zset   ARGV[1] job key prefix   ARGV[2] offset   ARGV[3] limit
-- ARGV[4..] ids to read instead of a range (none for a range); an id not in the set has
-- score -1.
-- Returns a list of { id, score, post, platform, version, attempts, state, error, due,
-- tenant }.
local ids = {}
if #ARGV > 3 then
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
  ids = redis.call('ZRANGE', KEYS[1], offset, offset + limit - 1)
end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'post', 'platform', 'version', 'attempts', 'state',
    'error', 'due', 'tenant')
  if f[2] then
    local score = redis.call('ZSCORE', KEYS[1], id) or -1
    out[#out + 1] = { id, score, f[1], f[2], f[3], f[4] or 0, f[5] or '', f[6] or '', f[7] or 0,
      f[8] or '' }
  end
end
return out
