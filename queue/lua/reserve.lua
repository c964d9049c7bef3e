-- reserve: promote due delayed jobs, then take up to `max` queued jobs of the
-- given types (in order) for `worker`, each with a lease.
-- KEYS[1] prefix   ARGV: worker now lease_ms max ntypes type1 .. typeN
-- returns a flat array: id type org payload attempts max_attempts lease_until, ...
-- Batched: one RPOP with a count per type, one ZADD and one pair of stats
-- HINCRBYs per call; per job only HMGET + HSET.
local P = KEYS[1]
local worker, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, ntypes = tonumber(ARGV[4]), tonumber(ARGV[5])
local stats = P .. 'stats'

ml_promote_due(P, now, 1000)

local out = {}
local z = {}
local n = 0
local lu = now + lease
-- numbers passed to redis.call are formatted with printf("%.14g"): pass
-- strings made once per call instead (ARGV[2] is `now` as sent)
local lus, nows = tostring(lu), ARGV[2]
local small = {}
for i = 1, 32 do small[i] = tostring(i) end
for t = 1, ntypes do
  if n >= max then break end
  local typ = ARGV[5 + t]
  local ids = redis.call('RPOP', P .. 'ready:' .. typ, max - n)
  if ids then
    local got = 0
    for _, id in ipairs(ids) do
      local jk = P .. 'job:' .. id
      local f = redis.call('HMGET', jk, 'state', 'org', 'payload', 'max_attempts', 'attempts',
                           'started_at')
      if f[1] == 'queued' then
        local att = tonumber(f[5] or 0) + 1
        local atts = small[att] or tostring(att)
        if f[6] then
          redis.call('HSET', jk, 'state', 'active', 'worker', worker, 'lease_until', lus,
                     'last_started_at', nows, 'attempts', atts)
        else
          redis.call('HSET', jk, 'state', 'active', 'worker', worker, 'lease_until', lus,
                     'last_started_at', nows, 'attempts', atts, 'started_at', nows)
        end
        z[#z + 1] = lus
        z[#z + 1] = id
        out[#out + 1] = id
        out[#out + 1] = typ
        out[#out + 1] = f[2]
        out[#out + 1] = f[3]
        out[#out + 1] = att
        out[#out + 1] = f[4]
        out[#out + 1] = lu
        got = got + 1
      end
    end
    if got > 0 then
      redis.call('HINCRBY', stats, typ .. ':queued', -got)
      redis.call('HINCRBY', stats, typ .. ':active', got)
      n = n + got
    end
  end
end
-- unpack is limited by the Lua C stack: ZADD in slices
for i = 1, #z, 4000 do
  redis.call('ZADD', P .. 'leases', unpack(z, i, math.min(i + 3999, #z)))
end
return out
