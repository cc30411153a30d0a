-- Claim up to N due jobs atomically, each with a lease and a fencing token.
-- KEYS[1] scheduled zset   KEYS[2] active zset   KEYS[3] paused-platforms set
-- KEYS[4] paused-jobs zset KEYS[5] global pause flag   KEYS[6] token counter
-- ARGV[1] job key prefix   ARGV[2] max jobs   ARGV[3] lease (ms)
-- Returns { now, next due (ms, -1 when none), jobs } where each job is
-- { id, token, attempts, post, platform, version, due, recovered, tenant }. Jobs whose lease
-- expired (their worker died) are claimable again: no separate checker is needed.
-- Time is the Redis server's clock, never the workers'.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
-- The paused set holds instance pauses (a platform's name) and tenant pauses
-- ("tenant<TAB>id<TAB>" for all its platforms, "tenant<TAB>id<TAB>platform" for one).
local function paused(set, platform, tenant)
  if redis.call('SISMEMBER', set, platform) == 1 then return true end
  if tenant and tenant ~= '' then
    return redis.call('SISMEMBER', set, 'tenant\t' .. tenant .. '\t') == 1
      or redis.call('SISMEMBER', set, 'tenant\t' .. tenant .. '\t' .. platform) == 1
  end
  return false
end
local jobs = {}
if redis.call('EXISTS', KEYS[5]) == 0 then
  for pass = 1, 2 do
    local set = pass == 1 and KEYS[2] or KEYS[1]
    while #jobs < max do
      local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, max - #jobs)
      if #ids == 0 then break end
      for _, id in ipairs(ids) do
        local key = ARGV[1] .. id
        local fields = redis.call('HMGET', key, 'platform', 'post', 'version', 'due', 'tenant')
        local platform = fields[1]
        redis.call('ZREM', set, id)
        if not platform then
          -- An orphan member without its hash (e.g. a partial cancel): drop it.
        elseif paused(KEYS[3], platform, fields[5]) then
          redis.call('ZADD', KEYS[4], fields[4], id)
          redis.call('HSET', key, 'state', 'paused')
        else
          local token = redis.call('INCR', KEYS[6])
          local attempts = redis.call('HINCRBY', key, 'attempts', 1)
          redis.call('ZADD', KEYS[2], now + lease, id)
          redis.call('HSET', key, 'state', 'active', 'token', token, 'claimed_at', now)
          jobs[#jobs + 1] = { id, token, attempts, fields[2], platform, fields[3], fields[4],
            pass == 1 and 1 or 0, fields[5] or '' }
        end
      end
    end
  end
end
local next_due = -1
for _, set in ipairs({ KEYS[1], KEYS[2] }) do
  local head = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  if head[2] then
    local score = tonumber(head[2])
    if next_due < 0 or score < next_due then next_due = score end
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then next_due = -1 end
return { now, next_due, jobs }
