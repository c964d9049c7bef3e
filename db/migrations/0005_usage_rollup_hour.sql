-- 0005 — usage_rollup_hour: the 15-minute rollup summed per UTC hour.
--
-- GET /v1/usage/aggregate reads it instead of usage_rollup when every bucket
-- boundary of the answer is a whole UTC hour (UTC and every zone whose
-- offsets over the range are whole hours: hourly, daily and monthly buckets
-- are then exact sums of UTC hours).  It has a quarter of the rows, which is
-- what makes an organization-wide month fast.  Zones with :30 / :45 offsets
-- (Asia/Kolkata, Asia/Kathmandu, ...) keep reading the 15-minute rollup.
--
-- Maintained by the same statement as usage_rollup (db/usage.c, k_move), for
-- exactly the rows that were new, so both levels always agree:
--   usage_rollup_hour(h) = sum of usage_rollup over the four quarters of h.
-- Filled here from usage_rollup for the events already stored.

CREATE TABLE usage_rollup_hour (
  org_id       bigint NOT NULL,
  customer_id  bigint NOT NULL,
  metric_id    bigint NOT NULL,
  bucket       timestamptz NOT NULL
               CHECK (bucket = date_bin('1 hour', bucket, timestamptz '1970-01-01 00:00:00+00')),
  quantity     numeric(38,12) NOT NULL CHECK (quantity >= 0),
  events       bigint NOT NULL CHECK (events > 0),
  max_quantity numeric(38,12) NOT NULL,
  -- INCLUDE: a customer's month is an index-only scan (its rows are spread
  -- over as many heap pages as there were ingest batches)
  PRIMARY KEY (org_id, customer_id, metric_id, bucket) INCLUDE (quantity, events, max_quantity)
);
CREATE INDEX usage_rollup_hour_org_bucket_idx ON usage_rollup_hour (org_id, bucket);

INSERT INTO usage_rollup_hour (org_id, customer_id, metric_id, bucket, quantity, events,
                               max_quantity)
SELECT org_id, customer_id, metric_id,
       date_bin('1 hour', bucket, timestamptz '1970-01-01 00:00:00+00'),
       sum(quantity), sum(events), max(max_quantity)
  FROM usage_rollup
 GROUP BY 1, 2, 3, 4;
