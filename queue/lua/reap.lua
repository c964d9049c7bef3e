-- reap: single-flight; jobs whose lease ended go back to the front of their
-- ready list (or dead when out of attempts), and dead jobs older than the
-- retention leave the dead set.
-- KEYS[1] prefix   ARGV: now token lock_ms retention_ms limit
-- returns how many leases were reaped, or -1 if another reaper holds the lock
local P = KEYS[1]
local now, token, lock_ms = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local retention, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
if not redis.call('SET', P .. 'reaper', token, 'NX', 'PX', lock_ms) then return -1 end
local stats = P .. 'stats'
local n = 0
local expired = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', P .. 'leases', id)
  local jk = P .. 'job:' .. id
  local st, typ, att, maxa, w, dkey = unpack(redis.call('HMGET', jk, 'state', 'type',
                                                        'attempts', 'max_attempts', 'worker',
                                                        'dedupe'))
  if st == 'active' then
    n = n + 1
    redis.call('HINCRBY', stats, typ .. ':active', -1)
    redis.call('HINCRBY', stats, typ .. ':failed_total', 1)
    local msg = 'lease expired (worker ' .. tostring(w) .. ' stopped answering)'
    if tonumber(att) >= tonumber(maxa) then
      ml_bury(P, id, typ, msg, now, retention, dkey)
    else
      redis.call('HSET', jk, 'state', 'queued', 'error', msg)
      redis.call('RPUSH', P .. 'ready:' .. typ, id)
      ml_wake(P, typ)
      redis.call('HINCRBY', stats, typ .. ':queued', 1)
      redis.call('HINCRBY', stats, typ .. ':retried_total', 1)
    end
  end
end
local old = redis.call('ZRANGEBYSCORE', P .. 'dead', '-inf', now - retention, 'LIMIT', 0, limit)
for _, m in ipairs(old) do
  redis.call('ZREM', P .. 'dead', m)
  local sep = string.find(m, '|', 1, true)
  local typ = string.sub(m, 1, sep - 1)
  redis.call('HINCRBY', stats, typ .. ':dead', -1)
end
if redis.call('GET', P .. 'reaper') == token then redis.call('DEL', P .. 'reaper') end
return n
