-- progress: record 0..100 and a message on an active job held by worker.
-- KEYS[1] prefix   ARGV: id worker pct msg   returns 1 held, 0 lost
local P = KEYS[1]
local jk = P .. 'job:' .. ARGV[1]
local st, w = unpack(redis.call('HMGET', jk, 'state', 'worker'))
if st ~= 'active' or w ~= ARGV[2] then return 0 end
redis.call('HSET', jk, 'progress', ARGV[3], 'progress_msg', ARGV[4])
return 1
