#!/usr/bin/env python3
"""ingest_gen.py — the benchmark's events, in the two shapes it sends them.

  ingest_gen.py OUTDIR N CUSTOMERS BATCH ORG_ID CUST_ID0 METRIC_IDS...
  INGEST_SHAPE=live ingest_gen.py ...

Writes OUTDIR/batches/NNNNN.json (POST /v1/usage bodies of BATCH events) and
OUTDIR/copy.tsv (the same events as rows for psql \\copy into usage_events,
with the ids the API would resolve).  Deterministic (seeded), in the style of
../shared/tools/gen_usage.py: customers site-00001.., four metrics, quantities
with up to three decimals.  Times: INGEST_SHAPE=backfill (the default) spreads
them at random over the previous 30 days, like gen_usage.py spreads a month —
nearly every event lands in its own 15-minute rollup bucket, the rollup's
worst case; INGEST_SHAPE=live sends them in time order over the last hour
(with up to a minute of jitter), the way metering agents report as usage
happens.  Event ids are prefixed with the shape, so both can go to one
organization.
"""
import os, random, sys, datetime

out, n, ncust, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
org, cust0 = int(sys.argv[5]), int(sys.argv[6])
metrics = [(code, int(mid)) for code, mid in (a.split('=') for a in sys.argv[7:])]
shape = os.environ.get('INGEST_SHAPE', 'backfill')
if shape not in ('backfill', 'live'):
    sys.exit('INGEST_SHAPE must be backfill or live')
rnd = random.Random(7)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
start = now - datetime.timedelta(days=30)
hour_ago = now - datetime.timedelta(hours=1)
os.makedirs(os.path.join(out, 'batches'), exist_ok=True)
copy = open(os.path.join(out, 'copy.tsv'), 'w')
body = []
nb = 0
def flush():
    global body, nb
    if body:
        with open(os.path.join(out, 'batches', '%05d.json' % nb), 'w') as f:
            f.write('{"events":[' + ','.join(body) + ']}')
        nb += 1
        body = []
for i in range(n):
    c = rnd.randrange(ncust)
    code, mid = metrics[rnd.randrange(len(metrics))]
    q = '%d.%03d' % (rnd.randrange(100), rnd.randrange(1000))
    if shape == 'live':
        t = hour_ago + datetime.timedelta(seconds=3540 * i // n + rnd.randrange(60))
    else:
        t = start + datetime.timedelta(seconds=rnd.randrange(30 * 86400 - 600))
    ts = t.strftime('%Y-%m-%dT%H:%M:%SZ')
    eid = '%s-%09d' % (shape, i)
    body.append('{"event_id":"%s","customer_id":"site-%05d","metric":"%s","quantity":"%s",'
                '"timestamp":"%s"}' % (eid, c + 1, code, q, ts))
    copy.write('%d\t%d\t%d\t%s\t%s\t%s\n' % (org, cust0 + c, mid, eid, q, ts))
    if len(body) == batch:
        flush()
flush()
copy.close()
