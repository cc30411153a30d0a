-- Settle leased jobs: ack (done), retry (back to scheduled after a delay) or dead-letter.
-- Only the holder of the current fencing token may settle a job.
-- KEYS[1] scheduled zset   KEYS[2] active zset   KEYS[3] dead zset
-- ARGV[1] job key prefix   ARGV[2] wake channel
-- ARGV[3..] groups of 5: id, token, action ("ack" | "retry" | "dead"), delay ms, error
-- Returns one code per job: 1 settled, 0 rejected (stale token or unknown job).
-- A job re-versioned while leased (`requeue`) goes back to scheduled at its new due time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local earliest = nil
for i = 3, #ARGV, 5 do
  local id, token, action = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local delay, err = tonumber(ARGV[i + 3]), ARGV[i + 4]
  local key = ARGV[1] .. id
  local fields = redis.call('HMGET', key, 'token', 'requeue', 'due')
  if fields[1] ~= token then
    out[#out + 1] = 0
  else
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', key, 'token')
    if fields[2] then
      local due = tonumber(fields[3])
      redis.call('HDEL', key, 'requeue', 'error')
      redis.call('HSET', key, 'state', 'scheduled', 'attempts', 0)
      redis.call('ZADD', KEYS[1], due, id)
      if earliest == nil or due < earliest then earliest = due end
    elseif action == 'ack' then
      redis.call('DEL', key)
    elseif action == 'retry' then
      local due = now + delay
      redis.call('HSET', key, 'state', 'retrying', 'due', due, 'error', err)
      redis.call('ZADD', KEYS[1], due, id)
      if earliest == nil or due < earliest then earliest = due end
    else
      redis.call('HSET', key, 'state', 'dead', 'error', err, 'died_at', now)
      redis.call('ZADD', KEYS[3], now, id)
    end
    out[#out + 1] = 1
  end
end
if earliest then redis.call('PUBLISH', ARGV[2], earliest) end
return out
