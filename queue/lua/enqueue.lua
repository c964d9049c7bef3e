-- enqueue: a new job, queued now or delayed; or the unfinished job that
-- already holds the dedupe key.
-- KEYS[1] prefix   ARGV: type org payload max_attempts now delay_ms dedupe_key
-- returns {id, existing(0|1)}
local P = KEYS[1]
local typ, org, payload = ARGV[1], ARGV[2], ARGV[3]
local maxa, now, delay = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local dkey = ARGV[7]
if dkey ~= '' then
  local ex = redis.call('GET', P .. 'dedupe:' .. dkey)
  if ex and redis.call('EXISTS', P .. 'job:' .. ex) == 1 then return {ex, 1} end
end
local id = tostring(redis.call('INCR', P .. 'seq'))
local jk = P .. 'job:' .. id
local state = 'queued'
if delay > 0 then state = 'delayed' end
redis.call('HSET', jk, 'type', typ, 'org', org, 'payload', payload, 'state', state,
           'attempts', 0, 'max_attempts', maxa, 'progress', 0, 'created_at', now,
           'run_at', now + delay, 'dedupe', dkey)
redis.call('SADD', P .. 'types', typ)
redis.call('HINCRBY', P .. 'stats', typ .. ':' .. state, 1)
if delay > 0 then
  redis.call('ZADD', P .. 'delayed', now + delay, id)
else
  redis.call('LPUSH', P .. 'ready:' .. typ, id)
  redis.call('LPUSH', P .. 'wake:' .. typ, 1)
  redis.call('LTRIM', P .. 'wake:' .. typ, 0, 63)
end
if dkey ~= '' then redis.call('SET', P .. 'dedupe:' .. dkey, id) end
return {id, 0}
