-- ack: an active job held by worker succeeded.
-- KEYS[1] prefix   ARGV: id worker result now retention_ms   returns 1 done, 0 lost
local P = KEYS[1]
local id, worker, result = ARGV[1], ARGV[2], ARGV[3]
local now, retention = tonumber(ARGV[4]), tonumber(ARGV[5])
local jk = P .. 'job:' .. id
local st, w, typ, dkey = unpack(redis.call('HMGET', jk, 'state', 'worker', 'type', 'dedupe'))
if st ~= 'active' or w ~= worker then return 0 end
redis.call('HSET', jk, 'state', 'succeeded', 'result', result, 'finished_at', now,
           'progress', 100)
redis.call('ZREM', P .. 'leases', id)
redis.call('PEXPIRE', jk, retention)
redis.call('HINCRBY', P .. 'stats', typ .. ':active', -1)
redis.call('HINCRBY', P .. 'stats', typ .. ':succeeded_total', 1)
if dkey and dkey ~= '' and redis.call('GET', P .. 'dedupe:' .. dkey) == id then
  redis.call('DEL', P .. 'dedupe:' .. dkey)
end
return 1
