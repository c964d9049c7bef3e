-- 0002 — usage events, the exactly-once ledger and the 15-minute rollup.
--
-- usage_event_ids is the dedupe ledger: (org_id, event_id) is unique forever,
-- whatever month the event belongs to.  A unique index on the partitioned
-- usage_events would have to include occurred_at, so it could not stop the
-- same event_id arriving again with another timestamp; the ledger can.  An
-- event is stored (usage_events) and counted (usage_rollup) only in the same
-- statement that won its ledger row, so a retried batch adds nothing.
--
-- usage_events is partitioned by month of occurred_at; partitions are made on
-- demand by ml_usage_ensure_partitions before a batch is inserted.  It has no
-- foreign keys to customers/metrics: the ingest path resolves both inside the
-- caller's organization before a row is staged, customers and metrics are
-- never deleted, and per-row FK triggers would halve COPY speed.
--
-- usage_rollup keeps sum, count and max per (customer, metric, 15-minute
-- bucket).  Every real UTC offset is a multiple of 15 minutes, so hourly,
-- daily and monthly buckets in any time zone are exact sums of these.

CREATE TABLE usage_event_ids (
  org_id      bigint NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
  occurred_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, event_id)
);

CREATE TABLE usage_events (
  org_id      bigint NOT NULL,
  customer_id bigint NOT NULL,
  metric_id   bigint NOT NULL,
  event_id    text NOT NULL,
  quantity    numeric(38,12) NOT NULL CHECK (quantity >= 0),
  occurred_at timestamptz NOT NULL,
  properties  jsonb,
  received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (occurred_at);
CREATE INDEX usage_events_customer_idx ON usage_events (org_id, customer_id, occurred_at DESC);

CREATE TABLE usage_rollup (
  org_id       bigint NOT NULL,
  customer_id  bigint NOT NULL,
  metric_id    bigint NOT NULL,
  bucket       timestamptz NOT NULL
               CHECK (bucket = date_bin('15 minutes', bucket, timestamptz '1970-01-01 00:00:00+00')),
  quantity     numeric(38,12) NOT NULL CHECK (quantity >= 0),
  events       bigint NOT NULL CHECK (events > 0),
  max_quantity numeric(38,12) NOT NULL,
  PRIMARY KEY (org_id, customer_id, metric_id, bucket)
);
CREATE INDEX usage_rollup_org_bucket_idx ON usage_rollup (org_id, bucket);

-- Creates the monthly partitions of usage_events covering [p_from, p_to].
CREATE FUNCTION ml_usage_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  m date := date_trunc('month', p_from AT TIME ZONE 'UTC')::date;
  last date := date_trunc('month', p_to AT TIME ZONE 'UTC')::date;
  made int := 0;
  name text;
BEGIN
  WHILE m <= last LOOP
    name := format('usage_events_%s', to_char(m, 'YYYY_MM'));
    IF to_regclass(name) IS NULL THEN
      -- Serialize creators of the same month.  A concurrent creator that got
      -- there first makes our CREATE fail once it commits (the advisory lock
      -- does not refresh this transaction's view of the catalog, so a second
      -- to_regclass could still say "missing"): that failure means "done".
      PERFORM pg_advisory_xact_lock(727002, (extract(year FROM m) * 12 + extract(month FROM m))::int);
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF usage_events FOR VALUES FROM (%L) TO (%L)',
                       name, (m::timestamp AT TIME ZONE 'UTC'),
                       ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        made := made + 1;
      EXCEPTION WHEN duplicate_table OR unique_violation THEN
        NULL;
      END;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN made;
END $$;
