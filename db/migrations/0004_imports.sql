-- 0004 — usage_imports: one row per CSV file uploaded to POST /v1/usage/imports.
--
-- The API streams the upload into BILLING_STORAGE_DIR (file_path is relative
-- to it and built only from ids we generate), inserts this row and enqueues a
-- usage.import job.  The worker parses the file and loads it in chunks through
-- the same exactly-once insert path as JSON events (db_usage_insert_tx).
--
-- Resumability: each chunk's commit also advances done_rows and the counters
-- in this row, in the same transaction, so a retried job (worker killed, lease
-- expired) resumes after the last committed chunk with exact counts.  Under
-- on_error = 'abort' the whole file is validated before the first row is
-- loaded, so a bad row means nothing is imported.
--
-- status: queued → running → succeeded | failed.  failed = the file was
-- rejected (missing column, bad rows under abort, unreadable); error says why
-- and errors lists the first 100 row errors as [{"line": n, "message": "…"}].

CREATE TABLE usage_imports (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id      bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  created_by  text,
  filename    text CHECK (length(filename) <= 255),
  file_path   text NOT NULL,
  size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
  sha256      text,
  on_error    text NOT NULL DEFAULT 'abort' CHECK (on_error IN ('abort', 'skip')),
  status      text NOT NULL DEFAULT 'queued'
              CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  job_id      text,
  progress    int NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  rows        bigint NOT NULL DEFAULT 0,
  imported    bigint NOT NULL DEFAULT 0,
  duplicates  bigint NOT NULL DEFAULT 0,
  rejected    bigint NOT NULL DEFAULT 0,
  done_rows   bigint NOT NULL DEFAULT 0,
  errors      jsonb NOT NULL DEFAULT '[]',
  error       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz,
  UNIQUE (org_id, id)
);
CREATE INDEX usage_imports_org_created_idx ON usage_imports (org_id, created_at DESC);
