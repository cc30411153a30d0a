-- Delete dead-lettered jobs: every one, or only those among the given ids (a job that
-- left the dead-letter set meanwhile, e.g. retried, is kept).
-- KEYS[1] dead zset   ARGV[1] job key prefix   ARGV[2..] ids (none: all).
-- Returns how many were deleted.
if #ARGV == 1 then
  local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
  for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
  redis.call('DEL', KEYS[1])
  return #ids
end
local deleted = 0
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', ARGV[1] .. ARGV[i])
    deleted = deleted + 1
  end
end
return deleted
