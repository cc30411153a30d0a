-- Counts by state and the oldest overdue job, in one consistent read.
-- KEYS[1] scheduled  KEYS[2] active  KEYS[3] paused-jobs  KEYS[4] dead
-- KEYS[5] paused-platforms set   KEYS[6] global pause flag
-- Returns { now, scheduled, due, active, expired leases, paused, dead,
--           oldest due score (-1 when nothing is due), global paused (0/1), paused platforms }
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local oldest = -1
if head[2] and tonumber(head[2]) <= now then oldest = tonumber(head[2]) end
return {
  now,
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[1], '-inf', now),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCOUNT', KEYS[2], '-inf', now),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  oldest,
  redis.call('EXISTS', KEYS[6]),
  redis.call('SMEMBERS', KEYS[5]),
}
