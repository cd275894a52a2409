#!lua
-- Leader release(): compare-and-delete. ARGV[3] replica identity. Deletes the lease only when it is
-- ours (a replica never releases another's lease); 1 = released, 0 = not ours.
local key = P .. ':leader'
if redis.call('GET', key) == ARGV[3] then
  redis.call('DEL', key)
  return 1
end
return 0
