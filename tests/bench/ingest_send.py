#!/usr/bin/env python3
"""ingest_send.py — POST every batch file to /v1/usage over keep-alive
connections from THREADS threads; exits non-zero unless every one got 202.

  ingest_send.py HOST PORT TOKEN BATCH_DIR THREADS
"""
import http.client, os, sys, threading

host, port, token, d, nthreads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
files = sorted(os.path.join(d, f) for f in os.listdir(d))
bodies = [open(f, 'rb').read() for f in files]
lock = threading.Lock()
state = {'next': 0, 'bad': 0}
def run():
    c = http.client.HTTPConnection(host, port)
    h = {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}
    while True:
        with lock:
            i = state['next']
            state['next'] += 1
        if i >= len(bodies):
            return
        for attempt in range(20):
            c.request('POST', '/v1/usage', bodies[i], h)
            r = c.getresponse()
            r.read()
            if r.status == 202:
                break
            if r.status != 503:
                with lock:
                    state['bad'] += 1
                sys.stderr.write('batch %d: %d\n' % (i, r.status))
                break
th = [threading.Thread(target=run) for _ in range(nthreads)]
for t in th: t.start()
for t in th: t.join()
sys.exit(1 if state['bad'] else 0)
