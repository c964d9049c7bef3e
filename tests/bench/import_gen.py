#!/usr/bin/env python3
"""import_gen.py — a CSV file of usage events for tests/bench/run-import.

  import_gen.py PATH MEGABYTES

Rows in the column set our first customers send (customer_id, event_type,
event_id, event_date) plus quantity, like ../shared/data/usage_sample.csv;
12 customers, 4 metrics, times over the previous 30 days.  Prints the row
count.  Deterministic.
"""
import datetime, sys

path, mb = sys.argv[1], int(sys.argv[2])
metrics = ['api_calls', 'vm_uptime_minutes', 'storage_gb_hours', 'trips']
start = int((datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)).timestamp())
limit = mb * 1024 * 1024
rows = 0
size = 0
with open(path, 'w', buffering=1 << 20) as f:
    head = 'customer_id,event_type,event_id,event_date,quantity\n'
    f.write(head)
    size += len(head)
    chunk = []
    while size < limit:
        i = rows
        t = datetime.datetime.fromtimestamp(start + (i * 7919) % (30 * 86400 - 600), datetime.timezone.utc)
        line = 'site-%05d,%s,imp-%010d,%s,%d.%03d\n' % (
            i % 12 + 1, metrics[i % 4], i, t.strftime('%Y-%m-%dT%H:%M:%SZ'), i % 97, (i * 13) % 1000)
        chunk.append(line)
        size += len(line)
        rows += 1
        if len(chunk) == 10000:
            f.write(''.join(chunk))
            chunk = []
    f.write(''.join(chunk))
print(rows)
