-- Enqueue or re-version publish jobs, idempotently.
-- KEYS[1] scheduled zset   KEYS[2] active zset   KEYS[3] paused-platforms set
-- KEYS[4] paused-jobs zset KEYS[5] dead zset
-- ARGV[1] job key prefix   ARGV[2] wake channel
-- ARGV[3..] groups of 6: id, post id, platform, version, due (ms since epoch), tenant
-- Returns one code per job: 0 unchanged (replay or stale), 1 created, 2 updated.
-- A job of a newer version replaces an older one; while the older one is leased, the
-- newer one is parked on the job (`requeue`) and takes effect when the lease ends.
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
local out = {}
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local earliest = head[2] and tonumber(head[2]) or nil
local wake = false
for i = 3, #ARGV, 6 do
  local id, post, platform = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local version, due, tenant = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5]
  local key = ARGV[1] .. id
  local current = redis.call('HGET', key, 'version')
  local code = 0
  if current and tonumber(current) >= version then
    code = 0
  else
    local state = redis.call('HGET', key, 'state')
    code = current and 2 or 1
    if state == 'active' then
      redis.call('HSET', key, 'version', version, 'due', due, 'post', post, 'requeue', 1)
    else
      redis.call('ZREM', KEYS[5], id)
      redis.call('HSET', key, 'post', post, 'platform', platform, 'version', version,
        'due', due, 'attempts', 0, 'state', 'scheduled', 'tenant', tenant)
      redis.call('HDEL', key, 'error', 'token', 'requeue')
      if paused(KEYS[3], platform, tenant) then
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZADD', KEYS[4], due, id)
        redis.call('HSET', key, 'state', 'paused')
      else
        redis.call('ZREM', KEYS[4], id)
        redis.call('ZADD', KEYS[1], due, id)
        if earliest == nil or due < earliest then
          earliest = due
          wake = true
        end
      end
    end
  end
  out[#out + 1] = code
end
if wake then
  redis.call('PUBLISH', ARGV[2], earliest)
end
return out
