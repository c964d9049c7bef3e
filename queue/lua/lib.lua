-- lib.lua — helpers shared by the queue scripts.  jq.c prepends this file to
-- every script before SCRIPT LOAD (Redis scripts cannot include each other);
-- it is never run alone.

-- A token on the type's wake list: one waiting worker's BLPOP returns.
local function ml_wake(P, typ)
  redis.call('LPUSH', P .. 'wake:' .. typ, 1)
  redis.call('LTRIM', P .. 'wake:' .. typ, 0, 63)
end

-- Due delayed jobs (run_at <= now) go to the front of their ready lists.
-- Returns how many moved.
local function ml_promote_due(P, now, limit)
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
      ml_wake(P, typ)
      redis.call('HINCRBY', stats, typ .. ':delayed', -1)
      redis.call('HINCRBY', stats, typ .. ':queued', 1)
      n = n + 1
    end
  end
  return n
end

-- A job whose last allowed attempt failed: dead, kept `retention` ms, out of
-- the dedupe index.  The caller has already taken it out of the leases and
-- the active gauge.
local function ml_bury(P, id, typ, err, now, retention, dkey)
  local jk = P .. 'job:' .. id
  redis.call('HSET', jk, 'state', 'dead', 'error', err, 'finished_at', now)
  redis.call('ZADD', P .. 'dead', now, typ .. '|' .. id)
  redis.call('PEXPIRE', jk, retention)
  redis.call('HINCRBY', P .. 'stats', typ .. ':dead', 1)
  redis.call('HINCRBY', P .. 'stats', typ .. ':dead_total', 1)
  if dkey and dkey ~= '' and redis.call('GET', P .. 'dedupe:' .. dkey) == id then
    redis.call('DEL', P .. 'dedupe:' .. dkey)
  end
end
