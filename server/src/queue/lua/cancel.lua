-- Remove jobs whatever their state; a worker holding one can no longer settle it.
-- KEYS[1] scheduled  KEYS[2] active  KEYS[3] paused-jobs  KEYS[4] dead
-- ARGV[1] job key prefix   ARGV[2..] ids. Returns how many jobs existed.
local removed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  for k = 1, 4 do redis.call('ZREM', KEYS[k], id) end
  removed = removed + redis.call('DEL', ARGV[1] .. id)
end
return removed
