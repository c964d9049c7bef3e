-- retry: a dead job back to queued with fresh attempts.
-- KEYS[1] prefix   ARGV: id   returns 0 ok, 2 not found, 3 not dead
local P = KEYS[1]
local id = ARGV[1]
local jk = P .. 'job:' .. id
local st, typ = unpack(redis.call('HMGET', jk, 'state', 'type'))
if not st then return 2 end
if st ~= 'dead' then return 3 end
redis.call('ZREM', P .. 'dead', typ .. '|' .. id)
redis.call('PERSIST', jk)
redis.call('HSET', jk, 'state', 'queued', 'attempts', 0)
redis.call('HDEL', jk, 'finished_at', 'worker', 'lease_until')
redis.call('LPUSH', P .. 'ready:' .. typ, id)
ml_wake(P, typ)
redis.call('HINCRBY', P .. 'stats', typ .. ':dead', -1)
redis.call('HINCRBY', P .. 'stats', typ .. ':queued', 1)
return 0
