-- heartbeat: extend the lease of an active job held by worker.
-- KEYS[1] prefix   ARGV: id worker now lease_ms   returns 1 held, 0 lost
local P = KEYS[1]
local id, worker, now, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local jk = P .. 'job:' .. id
local st, w = unpack(redis.call('HMGET', jk, 'state', 'worker'))
if st ~= 'active' or w ~= worker then return 0 end
redis.call('HSET', jk, 'lease_until', now + lease)
redis.call('ZADD', P .. 'leases', now + lease, id)
return 1
