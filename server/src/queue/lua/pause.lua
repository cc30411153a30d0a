-- Pause or resume the queue, globally or for one platform.
-- KEYS[1] scheduled zset   KEYS[2] paused-platforms set   KEYS[3] paused-jobs zset
-- KEYS[4] global pause flag
-- ARGV[1] job key prefix   ARGV[2] wake channel   ARGV[3] "pause" | "resume"
-- ARGV[4] platform, or "" for every platform   ARGV[5] tenant, or "" for the instance.
-- An instance pause of every platform is the global flag; every other pause is a member
-- of the paused set. Resuming moves the parked jobs no pause still holds back to
-- scheduled and wakes the workers.
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
local action, platform, tenant = ARGV[3], ARGV[4], ARGV[5]
local member = platform
if tenant ~= '' then member = 'tenant\t' .. tenant .. '\t' .. platform end
if action == 'pause' then
  if member == '' then redis.call('SET', KEYS[4], 1) else redis.call('SADD', KEYS[2], member) end
  return 1
end
if member == '' then redis.call('DEL', KEYS[4]) else redis.call('SREM', KEYS[2], member) end
local parked = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #parked, 2 do
  local id, due = parked[i], parked[i + 1]
  local key = ARGV[1] .. id
  local f = redis.call('HMGET', key, 'platform', 'tenant')
  if not f[1] then
    redis.call('ZREM', KEYS[3], id)
  elseif not paused(KEYS[2], f[1], f[2]) then
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[1], due, id)
    redis.call('HSET', key, 'state', 'scheduled')
  end
end
redis.call('PUBLISH', ARGV[2], 0)
return 1
