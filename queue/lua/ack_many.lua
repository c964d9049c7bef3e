-- ack_many: ack.lua for a batch of jobs held by one worker, in one call.
-- KEYS[1] prefix   ARGV: worker now retention_ms n, then per job: id result
-- returns an array of 1 (done) / 0 (lost) in input order
-- A job enqueued with keep_ms '0' is deleted at once; one with another
-- keep_ms is kept that long; else retention_ms.
-- Batched: per job HMGET + HSET + PEXPIRE; one ZREM and one pair of stats
-- HINCRBYs per type per call.
local P = KEYS[1]
local worker, now, retention, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local stats = P .. 'stats'
local out = {}
local done = {}
local per = {}
for i = 0, n - 1 do
  local id, result = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local jk = P .. 'job:' .. id
  local st, w, typ, dkey, keep = unpack(redis.call('HMGET', jk, 'state', 'worker', 'type',
                                                    'dedupe', 'keep'))
  if st ~= 'active' or w ~= worker then
    out[#out + 1] = 0
  else
    -- string arguments: a Lua number argument costs a printf
    if keep == '0' then
      redis.call('DEL', jk)
    else
      redis.call('HSET', jk, 'state', 'succeeded', 'result', result, 'finished_at', ARGV[2],
                 'progress', '100')
      if not keep or keep == '' then keep = ARGV[3] end
      redis.call('PEXPIRE', jk, keep)
    end
    done[#done + 1] = id
    per[typ] = (per[typ] or 0) + 1
    if dkey and dkey ~= '' and redis.call('GET', P .. 'dedupe:' .. dkey) == id then
      redis.call('DEL', P .. 'dedupe:' .. dkey)
    end
    out[#out + 1] = 1
  end
end
for i = 1, #done, 4000 do
  redis.call('ZREM', P .. 'leases', unpack(done, i, math.min(i + 3999, #done)))
end
for typ, k in pairs(per) do
  redis.call('HINCRBY', stats, typ .. ':active', -k)
  redis.call('HINCRBY', stats, typ .. ':succeeded_total', k)
end
return out
