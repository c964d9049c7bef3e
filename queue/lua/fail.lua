-- fail: an active job held by worker failed; retry after backoff_ms, or dead
-- when permanent or out of attempts.
-- KEYS[1] prefix   ARGV: id worker error permanent now backoff_ms retention_ms
-- returns 0 lost, 1 retry scheduled, 2 dead
local P = KEYS[1]
local id, worker, err = ARGV[1], ARGV[2], ARGV[3]
local permanent, now = ARGV[4] == '1', tonumber(ARGV[5])
local backoff, retention = tonumber(ARGV[6]), tonumber(ARGV[7])
local jk = P .. 'job:' .. id
local st, w, typ, att, maxa, dkey = unpack(redis.call('HMGET', jk, 'state', 'worker', 'type',
                                                      'attempts', 'max_attempts', 'dedupe'))
if st ~= 'active' or w ~= worker then return 0 end
local stats = P .. 'stats'
redis.call('ZREM', P .. 'leases', id)
redis.call('HINCRBY', stats, typ .. ':active', -1)
redis.call('HINCRBY', stats, typ .. ':failed_total', 1)
if permanent or tonumber(att) >= tonumber(maxa) then
  ml_bury(P, id, typ, err, now, retention, dkey)
  return 2
end
redis.call('HSET', jk, 'state', 'delayed', 'error', err, 'run_at', now + backoff)
redis.call('ZADD', P .. 'delayed', now + backoff, id)
redis.call('HINCRBY', stats, typ .. ':delayed', 1)
redis.call('HINCRBY', stats, typ .. ':retried_total', 1)
return 1
