-- reserve: promote due delayed jobs, then take up to `max` queued jobs of the
-- given types (in order) for `worker`, each with a lease.
-- KEYS[1] prefix   ARGV: worker now lease_ms max ntypes type1 .. typeN
-- returns a flat array: id type org payload attempts max_attempts lease_until, ...
local P = KEYS[1]
local worker, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, ntypes = tonumber(ARGV[4]), tonumber(ARGV[5])
local stats = P .. 'stats'

local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)
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
  end
end

local out = {}
local n = 0
for t = 1, ntypes do
  local typ = ARGV[5 + t]
  local ready = P .. 'ready:' .. typ
  while n < max do
    local id = redis.call('RPOP', ready)
    if not id then break end
    local jk = P .. 'job:' .. id
    local f = redis.call('HMGET', jk, 'state', 'org', 'payload', 'max_attempts')
    if f[1] == 'queued' then
      local att = redis.call('HINCRBY', jk, 'attempts', 1)
      local lu = now + lease
      redis.call('HSET', jk, 'state', 'active', 'worker', worker, 'lease_until', lu,
                 'last_started_at', now)
      redis.call('HSETNX', jk, 'started_at', now)
      redis.call('ZADD', P .. 'leases', lu, id)
      redis.call('HINCRBY', stats, typ .. ':queued', -1)
      redis.call('HINCRBY', stats, typ .. ':active', 1)
      out[#out + 1] = id
      out[#out + 1] = typ
      out[#out + 1] = f[2]
      out[#out + 1] = f[3]
      out[#out + 1] = att
      out[#out + 1] = f[4]
      out[#out + 1] = lu
      n = n + 1
    end
  end
end
return out
