-- enqueue_many: enqueue.lua for a batch in one call (same rules per job).
-- KEYS[1] prefix
-- ARGV: now n, then per job: type org payload max_attempts delay_ms dedupe_key
-- returns a flat array: id existing(0|1), ... in input order
local P = KEYS[1]
local now, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
local woken = {}
local seen = {}
for i = 0, n - 1 do
  local b = 3 + i * 6
  local typ, org, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local maxa, delay, dkey = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), ARGV[b + 5]
  local existing = nil
  if dkey ~= '' then
    local ex = redis.call('GET', P .. 'dedupe:' .. dkey)
    if ex and redis.call('EXISTS', P .. 'job:' .. ex) == 1 then existing = ex end
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    seen[typ] = true
    local id = tostring(redis.call('INCR', P .. 'seq'))
    local jk = P .. 'job:' .. id
    local state = 'queued'
    if delay > 0 then state = 'delayed' end
    redis.call('HSET', jk, 'type', typ, 'org', org, 'payload', payload, 'state', state,
               'attempts', 0, 'max_attempts', maxa, 'progress', 0, 'created_at', now,
               'run_at', now + delay, 'dedupe', dkey)
    redis.call('HINCRBY', P .. 'stats', typ .. ':' .. state, 1)
    if delay > 0 then
      redis.call('ZADD', P .. 'delayed', now + delay, id)
    else
      redis.call('LPUSH', P .. 'ready:' .. typ, id)
      woken[typ] = (woken[typ] or 0) + 1
    end
    if dkey ~= '' then redis.call('SET', P .. 'dedupe:' .. dkey, id) end
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
for typ, _ in pairs(seen) do redis.call('SADD', P .. 'types', typ) end
for typ, k in pairs(woken) do
  for _ = 1, math.min(k, 64) do redis.call('LPUSH', P .. 'wake:' .. typ, 1) end
  redis.call('LTRIM', P .. 'wake:' .. typ, 0, 63)
end
return out
