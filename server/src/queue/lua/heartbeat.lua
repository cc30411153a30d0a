-- Extend the lease of a job still being worked on.
-- KEYS[1] active zset   ARGV[1] job key prefix   ARGV[2] id   ARGV[3] token
-- ARGV[4] lease (ms). Returns 1 when extended, 0 when the token is stale.
local key = ARGV[1] .. ARGV[2]
if redis.call('HGET', key, 'token') ~= ARGV[3] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[4]), ARGV[2])
return 1
