-- promote: move due delayed jobs to their ready lists.
-- KEYS[1] prefix   ARGV: now limit   returns how many
local P = KEYS[1]
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
return ml_promote_due(P, now, limit)
