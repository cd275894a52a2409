#!lua
-- Leader check(): compare-and-extend. ARGV[3] replica identity, ARGV[4] lease_ms.
-- Renews the lease only while it is still ours; 1 = still leading, 0 = lost.
local key = P .. ':leader'
if redis.call('GET', key) == ARGV[3] then
  redis.call('PEXPIRE', key, ARGV[4])
  return 1
end
return 0
