-- enqueue_many: enqueue.lua for a batch in one call (same rules per job).
-- KEYS[1] prefix
-- ARGV: now n, then per job: type org payload max_attempts delay_ms dedupe_key keep_ms
-- (keep_ms: how long the job is kept once succeeded; '' = the acking client's
-- retention, '0' = deleted at once, like BullMQ's removeOnComplete)
-- returns a flat array: id existing(0|1), ... in input order
-- Batched: per job one HSET (plus the dedupe SET when there is a key); ids
-- from one INCRBY; per type one LPUSH, one wake LPUSH, one stats HINCRBY.
local P = KEYS[1]
local now, n = tonumber(ARGV[1]), tonumber(ARGV[2])
-- pass 1: which jobs are new.  dk[key] = an earlier job's id, or true when the
-- key's first job in this batch is new (later ones in the batch return it).
local dk = {}
local nnew = 0
for i = 0, n - 1 do
  local dkey = ARGV[8 + i * 7]
  if dkey == '' then
    nnew = nnew + 1
  elseif dk[dkey] == nil then
    local ex = redis.call('GET', P .. 'dedupe:' .. dkey)
    if ex and redis.call('EXISTS', P .. 'job:' .. ex) == 1 then
      dk[dkey] = ex
    else
      dk[dkey] = true
      nnew = nnew + 1
    end
  end
end
local nextid = 0
if nnew > 0 then nextid = redis.call('INCRBY', P .. 'seq', nnew) - nnew end
local out, counts, types, ready, delayed = {}, {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 3 + i * 7
  local typ, org, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local maxa, delay, dkey = ARGV[b + 3], tonumber(ARGV[b + 4]), ARGV[b + 5]
  local keep = ARGV[b + 6]
  local ex = nil
  if dkey ~= '' and dk[dkey] ~= true then ex = dk[dkey] end
  if ex then
    out[#out + 1] = ex
    out[#out + 1] = 1
  else
    nextid = nextid + 1
    local id = tostring(nextid)
    local state = 'queued'
    if delay > 0 then state = 'delayed' end
    redis.call('HSET', P .. 'job:' .. id, 'type', typ, 'org', org, 'payload', payload,
               'state', state, 'attempts', 0, 'max_attempts', maxa, 'progress', 0,
               'created_at', now, 'run_at', now + delay, 'dedupe', dkey, 'keep', keep)
    types[typ] = true
    local ck = typ .. ':' .. state
    counts[ck] = (counts[ck] or 0) + 1
    if delay > 0 then
      delayed[#delayed + 1] = now + delay
      delayed[#delayed + 1] = id
    else
      local r = ready[typ]
      if not r then
        r = {}
        ready[typ] = r
      end
      r[#r + 1] = id
    end
    if dkey ~= '' then
      redis.call('SET', P .. 'dedupe:' .. dkey, id)
      dk[dkey] = id
    end
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
for ck, k in pairs(counts) do redis.call('HINCRBY', P .. 'stats', ck, k) end
for typ, _ in pairs(types) do redis.call('SADD', P .. 'types', typ) end
-- unpack is limited by the Lua C stack: multi-element commands in slices
for i = 1, #delayed, 4000 do
  redis.call('ZADD', P .. 'delayed', unpack(delayed, i, math.min(i + 3999, #delayed)))
end
local ones = {}
for i = 1, 64 do ones[i] = 1 end
for typ, ids in pairs(ready) do
  for i = 1, #ids, 4000 do
    redis.call('LPUSH', P .. 'ready:' .. typ, unpack(ids, i, math.min(i + 3999, #ids)))
  end
  redis.call('LPUSH', P .. 'wake:' .. typ, unpack(ones, 1, math.min(#ids, 64)))
  redis.call('LTRIM', P .. 'wake:' .. typ, 0, 63)
end
return out
