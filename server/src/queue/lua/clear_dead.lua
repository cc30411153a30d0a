-- Delete every dead-lettered job. KEYS[1] dead zset   ARGV[1] job key prefix.
-- Returns how many were deleted.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
return #ids
