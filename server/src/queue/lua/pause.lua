-- Pause or resume the queue, globally or for one platform.
-- KEYS[1] scheduled zset   KEYS[2] paused-platforms set   KEYS[3] paused-jobs zset
-- KEYS[4] global pause flag
-- ARGV[1] job key prefix   ARGV[2] wake channel   ARGV[3] "pause" | "resume"
-- ARGV[4] platform, or "" for the whole queue.
-- Resuming moves the platform's parked jobs back to scheduled and wakes the workers.
local action, platform = ARGV[3], ARGV[4]
if action == 'pause' then
  if platform == '' then redis.call('SET', KEYS[4], 1) else redis.call('SADD', KEYS[2], platform) end
  return 1
end
if platform == '' then redis.call('DEL', KEYS[4]) else redis.call('SREM', KEYS[2], platform) end
local parked = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #parked, 2 do
  local id, due = parked[i], parked[i + 1]
  local key = ARGV[1] .. id
  local p = redis.call('HGET', key, 'platform')
  if not p then
    redis.call('ZREM', KEYS[3], id)
  elseif redis.call('SISMEMBER', KEYS[2], p) == 0 then
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[1], due, id)
    redis.call('HSET', key, 'state', 'scheduled')
  end
end
redis.call('PUBLISH', ARGV[2], 0)
return 1
