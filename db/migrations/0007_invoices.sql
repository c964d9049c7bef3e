-- 0007 — invoices: lines and sub-lines, the audit trail, disputes, numbering.
--
-- Lifecycle (status):  draft → pending_approval → approved → issued → paid
--                                     └─ reject ─→ draft
--                      draft → issued            (customer without require_approval)
--                      draft | pending_approval | approved | issued → void
-- Every transition, and every (re)generation, writes an invoice_actions row in
-- the same transaction as the change.  An issued (or paid, or voided-after-
-- issue) invoice never changes again: its lines are the record of what was
-- billed.  Drafts, pending and approved invoices are refreshed by
-- invoice.generate (a change of amounts sends a pending/approved invoice back
-- to draft: its approval no longer covers what would be issued).
--
-- One invoice per customer and period: two non-void invoices of a customer may
-- not even overlap (the exclusion constraint) — the guarantee against billing
-- the same usage twice.  Voiding frees the period for a corrected invoice.
--
-- Numbers: <PREFIX>-<YYYY>-<NNNNNN>, gapless per organization and calendar year
-- of issue.  invoice_counters' row is incremented in the issuing transaction:
-- the row lock serializes concurrent issues and a rollback returns the number.
--
-- Amounts are numeric written with the currency's minor unit ("12.50", "1250"
-- for JPY); exact (unrounded) amounts keep up to 24 places.  subtotal = the
-- sum of the non-tax lines, tax = round(subtotal × tax_rate), total = both.
--
-- Late usage: an issued line keeps the quantity it billed.  Usage that arrives
-- later for the same period is shown on that invoice and billed as an
-- 'adjustment' line on the customer's next invoice; the adjustment records the
-- quantity range it covers (adjusted_from → adjusted_to) so the next one bills
-- only what is still unbilled.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE invoice_counters (
  org_id bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  year   int NOT NULL CHECK (year BETWEEN 2000 AND 9999),
  last   bigint NOT NULL CHECK (last >= 0),
  PRIMARY KEY (org_id, year)
);

CREATE TABLE invoices (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id        bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  customer_id   bigint NOT NULL,
  plan_id       bigint,
  period_start  timestamptz NOT NULL,
  period_end    timestamptz NOT NULL,
  status        text NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'pending_approval', 'approved', 'issued', 'paid', 'void')),
  number        text,
  currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  subtotal      numeric NOT NULL DEFAULT 0,
  tax_rate      numeric(9,6) NOT NULL DEFAULT 0 CHECK (tax_rate >= 0 AND tax_rate <= 1),
  tax           numeric NOT NULL DEFAULT 0,
  total         numeric NOT NULL DEFAULT 0,
  notes         text CHECK (length(notes) <= 2000),
  -- sha-256 of the generated content (lines, sub-lines, amounts): a
  -- regeneration that computes the same content changes nothing
  content_sha   text,
  -- bumped by every change of content or status (PDF and ETag versions)
  version       int NOT NULL DEFAULT 1,
  generated_at  timestamptz NOT NULL DEFAULT now(),
  issued_at     timestamptz,
  paid_at       timestamptz,
  voided_at     timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  UNIQUE (org_id, number),
  FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
  CHECK (period_end > period_start),
  CHECK ((number IS NOT NULL) = (issued_at IS NOT NULL)),
  CHECK (status NOT IN ('issued', 'paid') OR issued_at IS NOT NULL),
  CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
  CHECK ((status = 'void') = (voided_at IS NOT NULL)),
  EXCLUDE USING gist (org_id WITH =, customer_id WITH =,
                      tstzrange(period_start, period_end) WITH &&) WHERE (status <> 'void')
);
CREATE INDEX invoices_org_created_idx ON invoices (org_id, created_at DESC, id DESC);
CREATE INDEX invoices_org_customer_idx ON invoices (org_id, customer_id, period_start DESC);
CREATE INDEX invoices_org_status_idx ON invoices (org_id, status);
CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices
  FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();

CREATE TABLE invoice_lines (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invoice_id        uuid NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  org_id            bigint NOT NULL,
  position          int NOT NULL CHECK (position >= 0),
  kind              text NOT NULL
                    CHECK (kind IN ('base_fee', 'usage', 'minimum', 'adjustment', 'tax')),
  description       text NOT NULL,
  -- usage, minimum and adjustment lines: the charge they price (snapshots, so
  -- a later plan change does not rewrite history)
  charge_id         bigint,
  metric_id         bigint,
  metric_code       text,
  model             text,
  quantity          numeric,      -- usage of the period (after aggregation)
  billable_quantity numeric,      -- after included units
  unit_price        numeric,
  amount_exact      numeric,      -- unrounded
  -- the charge's pricing as it was billed ({model, unit_price, included_units,
  -- package_size, minimum, tiers}): late usage is priced with it, not with
  -- whatever the plan says later
  pricing           jsonb,
  amount            numeric NOT NULL,
  -- adjustment lines: the issued invoice whose late usage they bill
  source_invoice_id uuid REFERENCES invoices(id),
  adjusted_from     numeric,
  adjusted_to       numeric,
  UNIQUE (invoice_id, position)
);
CREATE INDEX invoice_lines_source_idx ON invoice_lines (source_invoice_id)
  WHERE source_invoice_id IS NOT NULL;

CREATE TABLE invoice_sub_lines (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  line_id     bigint NOT NULL REFERENCES invoice_lines(id) ON DELETE CASCADE,
  invoice_id  uuid NOT NULL,
  position    int NOT NULL CHECK (position >= 0),
  kind        text NOT NULL CHECK (kind IN ('day', 'tier', 'package')),
  description text NOT NULL,
  day         date,             -- kind 'day': the UTC day
  tier        int,              -- kind 'tier': 1-based
  tier_from   numeric,
  tier_to     numeric,          -- null: unbounded
  quantity    numeric NOT NULL,
  unit_price  numeric,
  flat_fee    numeric,
  amount      numeric,          -- exact; null for 'day'
  UNIQUE (line_id, position)
);
CREATE INDEX invoice_sub_lines_invoice_idx ON invoice_sub_lines (invoice_id);

CREATE TABLE invoice_actions (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invoice_id  uuid NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  org_id      bigint NOT NULL,
  action      text NOT NULL
              CHECK (action IN ('generate', 'regenerate', 'submit', 'approve', 'reject', 'issue',
                                'void', 'mark_paid', 'dispute_open', 'dispute_message',
                                'dispute_resolve')),
  from_status text,
  to_status   text NOT NULL,
  -- who: a user (kept as text too, so the trail survives the user's deletion),
  -- or 'system' for jobs
  actor_id    uuid REFERENCES users(id) ON DELETE SET NULL,
  actor       text NOT NULL,
  comment     text CHECK (length(comment) <= 4000),
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX invoice_actions_invoice_idx ON invoice_actions (invoice_id, id);

CREATE TABLE invoice_disputes (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id      bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  invoice_id  uuid NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
  status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  opened_by   text NOT NULL,
  resolved_by text,
  resolved_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE INDEX invoice_disputes_org_idx ON invoice_disputes (org_id, status, created_at DESC);
CREATE INDEX invoice_disputes_invoice_idx ON invoice_disputes (invoice_id);
CREATE TRIGGER invoice_disputes_touch BEFORE UPDATE ON invoice_disputes
  FOR EACH ROW EXECUTE FUNCTION ml_touch_updated_at();

CREATE TABLE invoice_dispute_messages (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dispute_id  uuid NOT NULL REFERENCES invoice_disputes(id) ON DELETE CASCADE,
  org_id      bigint,           -- null when a platform admin wrote it
  author_id   uuid REFERENCES users(id) ON DELETE SET NULL,
  author      text NOT NULL,
  author_role text NOT NULL,
  body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX invoice_dispute_messages_idx ON invoice_dispute_messages (dispute_id, id);

-- Billing runs: POST /v1/billing-runs inserts the row and enqueues billing.run,
-- which writes one 'queued' billing_run_items row per customer with a plan
-- (total = their count; a retried fan-out adds none twice) and enqueues one
-- invoice.generate job per queued item.  Each generate job turns its item
-- from 'queued' into its outcome in the same transaction as its invoice.
-- done / failed / finished are counted from the items when the run is read
-- (no shared counter row for every generation to queue on), so done + failed
-- = total exactly once every customer ran, whatever retries happened.  status
-- here is the fan-out's: queued → running, or failed (with error) when it
-- could not finish; readers derive succeeded / failed from the items.
CREATE TABLE billing_runs (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id       bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  period_start timestamptz NOT NULL,
  period_end   timestamptz NOT NULL CHECK (period_end > period_start),
  created_by   text NOT NULL,
  job_id       text,
  status       text NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  total        int CHECK (total >= 0),       -- null until the fan-out counted
  skipped      int NOT NULL DEFAULT 0,       -- customers without a plan
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  UNIQUE (org_id, id)
);
CREATE INDEX billing_runs_org_idx ON billing_runs (org_id, created_at DESC, id DESC);

CREATE TABLE billing_run_items (
  run_id      uuid NOT NULL REFERENCES billing_runs(id) ON DELETE CASCADE,
  customer_id bigint NOT NULL,
  outcome     text NOT NULL DEFAULT 'queued'
              CHECK (outcome IN ('queued', 'created', 'updated', 'unchanged', 'locked', 'failed')),
  invoice_id  uuid,
  error       text,
  finished_at timestamptz,
  PRIMARY KEY (run_id, customer_id)
);

-- A metric's usage of one customer over [p_from, p_to), as an invoice bills
-- it: sum → sum of quantities, count → number of events, max → the largest
-- quantity, unique_count → distinct values of the metric's property (from
-- the raw events).  Read from the hourly rollup when both ends are whole UTC
-- hours, else from the 15-minute rollup when they are quarter hours, else from
-- the raw events.  0 when there was no usage.
CREATE FUNCTION ml_usage_total(p_org bigint, p_customer bigint, p_metric bigint,
                               p_from timestamptz, p_to timestamptz)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE
  agg  text;
  prop text;
  q    numeric;
BEGIN
  SELECT aggregation, unique_property INTO agg, prop
    FROM metrics WHERE org_id = p_org AND id = p_metric;
  IF agg IS NULL THEN
    RETURN 0;
  END IF;
  IF agg = 'unique_count' THEN
    SELECT count(DISTINCT properties ->> prop) INTO q
      FROM usage_events
     WHERE org_id = p_org AND customer_id = p_customer AND metric_id = p_metric
       AND occurred_at >= p_from AND occurred_at < p_to AND properties ->> prop IS NOT NULL;
  ELSIF p_from = date_bin('1 hour', p_from, timestamptz 'epoch')
    AND p_to = date_bin('1 hour', p_to, timestamptz 'epoch') THEN
    SELECT CASE agg WHEN 'sum' THEN sum(quantity) WHEN 'count' THEN sum(events)
                    ELSE max(max_quantity) END INTO q
      FROM usage_rollup_hour
     WHERE org_id = p_org AND customer_id = p_customer AND metric_id = p_metric
       AND bucket >= p_from AND bucket < p_to;
  ELSIF p_from = date_bin('15 minutes', p_from, timestamptz 'epoch')
    AND p_to = date_bin('15 minutes', p_to, timestamptz 'epoch') THEN
    SELECT CASE agg WHEN 'sum' THEN sum(quantity) WHEN 'count' THEN sum(events)
                    ELSE max(max_quantity) END INTO q
      FROM usage_rollup
     WHERE org_id = p_org AND customer_id = p_customer AND metric_id = p_metric
       AND bucket >= p_from AND bucket < p_to;
  ELSE
    SELECT CASE agg WHEN 'sum' THEN sum(quantity) WHEN 'count' THEN count(*)
                    ELSE max(quantity) END INTO q
      FROM usage_events
     WHERE org_id = p_org AND customer_id = p_customer AND metric_id = p_metric
       AND occurred_at >= p_from AND occurred_at < p_to;
  END IF;
  RETURN coalesce(q, 0);
END $$;
