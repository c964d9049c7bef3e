-- 0003 — job_effects and job_runs: the ledger of billing-worker's built-in
-- test and benchmark job types (worker/builtin.c: the `sleep` type).
--
-- They serve no tenant and carry no org_id; they exist so tests and
-- benchmarks can prove the queue's guarantees through a real effect:
--   job_effects  one row per effect key, written with ON CONFLICT DO NOTHING —
--                the idempotent effect: however often a job runs (a worker
--                killed after its effect committed and before its ack, a
--                lease that expired), the effect is recorded once;
--   job_runs     one row per run of a job with an effect, appended in the
--                same statement as the effect, so a re-run is visible.
-- Real job types keep their effects in their own tables (usage_events,
-- invoices, reports); these two may be truncated at any time.

CREATE TABLE job_effects (
  key        text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
  job_id     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE job_runs (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id     text NOT NULL,
  key        text NOT NULL,
  worker     text NOT NULL,
  attempt    int NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_runs_key_idx ON job_runs (key);
CREATE INDEX job_runs_job_idx ON job_runs (job_id);
