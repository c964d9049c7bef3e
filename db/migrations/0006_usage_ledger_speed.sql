-- 0006 — a cheaper exactly-once ledger (usage_event_ids), found by profiling
-- the usage.ingest insert (tests/bench/run-ingest):
--
-- 1. event_id COLLATE "C": every batch claims its ids in the ledger's b-tree
--    on (org_id, event_id); with the database's linguistic collation each key
--    comparison goes through strcoll, with "C" it compares bytes.  Same
--    answer to "is this the same event_id?" (equality is byte equality in
--    every deterministic collation).  The staging table (db/usage.c) uses the
--    same collation, so the two join directly.
-- 2. No foreign key to organizations: its per-row RI trigger cost about a
--    quarter of the whole insert statement.  usage_events and the rollups
--    never had one for the same reason (0002); every row is written by
--    db/usage.c for an organization the caller resolved, and organizations
--    are never deleted (the tenant tables' ON DELETE CASCADE would leave
--    usage rows behind; an organization purge must delete them explicitly).
ALTER TABLE usage_event_ids DROP CONSTRAINT IF EXISTS usage_event_ids_org_id_fkey;
ALTER TABLE usage_event_ids ALTER COLUMN event_id TYPE text COLLATE "C";
