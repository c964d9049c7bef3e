-- 0008 — reports: PDF files rendered by report.render jobs (invoices and
-- usage reports), polled and downloaded through /v1/reports.
--
-- POST /v1/reports inserts a row and enqueues report.render {report_id}.  The
-- same request while a report of it is queued or running returns that report:
-- request_key is the canonical form of the request ("invoice:<id>:<version>",
-- "usage:<customer id>:<from>:<to>") and is unique among unfinished reports.
-- Issuing an invoice inserts its invoice report in the issuing transaction.
--
-- status: queued → running → succeeded | failed.  The worker writes the file
-- to a temporary name, fsyncs it and renames it to file_path (relative to
-- BILLING_STORAGE_DIR, built only from ids: <org>/<yyyy>/<mm>/<id>.pdf) before
-- it marks the row succeeded with size_bytes and sha256 (the download's ETag).
-- A retried render (kill -9, lease expiry) writes the same bytes again: the
-- renderer is deterministic.  attempts counts render starts.
--
-- invoice_number: the number printed on a rendered invoice PDF (NULL for a
-- draft): GET /v1/invoices/{id}/pdf serves the newest succeeded report that
-- has one, so a draft rendered before issue is never served as the invoice.
-- The worker renders the invoice as it is when the job runs; the version in
-- request_key only tells requests apart.

CREATE TABLE reports (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id       bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind IN ('invoice', 'usage')),
  invoice_id   uuid REFERENCES invoices(id) ON DELETE CASCADE,
  invoice_version int,
  customer_id  bigint,
  period_from  timestamptz,
  period_to    timestamptz,
  request_key  text NOT NULL,
  status       text NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  progress     int NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  attempts     int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  job_id       text,
  error        text,
  file_path    text,
  filename     text,
  invoice_number text,
  size_bytes   bigint CHECK (size_bytes >= 0),
  sha256       text,
  created_by   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id) ON DELETE CASCADE,
  CHECK ((kind = 'invoice') = (invoice_id IS NOT NULL)),
  CHECK (kind <> 'usage' OR (customer_id IS NOT NULL AND period_from IS NOT NULL
                             AND period_to > period_from)),
  CHECK ((status = 'succeeded') = (file_path IS NOT NULL AND sha256 IS NOT NULL
                                   AND size_bytes IS NOT NULL))
);
CREATE UNIQUE INDEX reports_unfinished_key ON reports (org_id, request_key)
  WHERE status IN ('queued', 'running');
CREATE INDEX reports_org_created_idx ON reports (org_id, created_at DESC, id DESC);
CREATE INDEX reports_invoice_idx ON reports (invoice_id, created_at DESC) WHERE invoice_id IS NOT NULL;
CREATE TRIGGER reports_touch BEFORE UPDATE ON reports
  FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();
