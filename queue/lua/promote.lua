-- promote: move due delayed jobs to their ready lists.
-- KEYS[1] prefix   ARGV: now limit   returns how many
local P = KEYS[1]
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local stats = P .. 'stats'
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, limit)
local n = 0
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', id)
  local jk = P .. 'job:' .. id
  local st, typ = unpack(redis.call('HMGET', jk, 'state', 'type'))
  if st == 'delayed' then
    redis.call('HSET', jk, 'state', 'queued')
    redis.call('RPUSH', P .. 'ready:' .. typ, id)
    redis.call('LPUSH', P .. 'wake:' .. typ, 1)
    redis.call('LTRIM', P .. 'wake:' .. typ, 0, 63)
    redis.call('HINCRBY', stats, typ .. ':delayed', -1)
    redis.call('HINCRBY', stats, typ .. ':queued', 1)
    n = n + 1
  end
end
return n
