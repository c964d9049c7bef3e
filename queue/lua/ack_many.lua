-- ack_many: ack.lua for a batch of jobs held by one worker, in one call.
-- KEYS[1] prefix   ARGV: worker now retention_ms n, then per job: id result
-- returns an array of 1 (done) / 0 (lost) in input order
local P = KEYS[1]
local worker, now, retention, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local stats = P .. 'stats'
local out = {}
for i = 0, n - 1 do
  local id, result = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local jk = P .. 'job:' .. id
  local st, w, typ, dkey = unpack(redis.call('HMGET', jk, 'state', 'worker', 'type', 'dedupe'))
  if st ~= 'active' or w ~= worker then
    out[#out + 1] = 0
  else
    redis.call('HSET', jk, 'state', 'succeeded', 'result', result, 'finished_at', now,
               'progress', 100)
    redis.call('ZREM', P .. 'leases', id)
    redis.call('PEXPIRE', jk, retention)
    redis.call('HINCRBY', stats, typ .. ':active', -1)
    redis.call('HINCRBY', stats, typ .. ':succeeded_total', 1)
    if dkey and dkey ~= '' and redis.call('GET', P .. 'dedupe:' .. dkey) == id then
      redis.call('DEL', P .. 'dedupe:' .. dkey)
    end
    out[#out + 1] = 1
  end
end
return out
