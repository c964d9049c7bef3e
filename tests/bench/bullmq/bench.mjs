// bench.mjs — the BullMQ side of tests/bench/run-queue: the same three
// measurements as bench_queue (enqueue rate, processed rate, enqueue→start
// latency at light load) with no-op jobs, in one Node process.
//
//   node bench.mjs --redis redis://127.0.0.1:PORT/0 [--jobs 200000] [--chunk 1000]
//                  [--concurrency 50] [--interval-us 5000] [--seconds 5] [--repeat R]
//
// Enqueue: Queue.addBulk in chunks of --chunk, awaited one after another, with
// no Worker running.  Processed: one Worker (concurrency 50, no-op processor)
// started on the full queue; the rate is taken between the first and the last
// 'completed' event, so start-up is not counted.  Latency: one Queue.add every
// --interval-us with the Worker idle; enqueue→start = the processor's clock
// minus a t0 taken just before Queue.add (same process, same clock).
// --repeat R runs enqueue + process R times (lines carry "run"; the queue is
// empty between runs; the Worker is paused while the next run enqueues).
// Jobs use removeOnComplete so Redis memory stays flat; every other BullMQ
// setting is its default (attempts 1, events stream on, stalled checks on).
// One JSON object per line on stdout.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
    return acc;
  }, []),
);
const redisUrl = args.redis || process.env.BILLING_REDIS_URL;
const JOBS = Number(args.jobs || 200000);
const CHUNK = Number(args.chunk || 1000);
const CONCURRENCY = Number(args.concurrency || 50);
const INTERVAL_US = Number(args['interval-us'] || 5000);
const SECONDS = Number(args.seconds || 5);
const REPEAT = Number(args.repeat || 1);
if (!redisUrl) {
  console.error('bench.mjs: --redis URL or BILLING_REDIS_URL');
  process.exit(2);
}

const versions = {
  bullmq: JSON.parse(readFileSync(new URL('./node_modules/bullmq/package.json', import.meta.url)))
    .version,
  ioredis: JSON.parse(readFileSync(new URL('./node_modules/ioredis/package.json', import.meta.url)))
    .version,
  node: process.versions.node,
};
const jobOpts = { removeOnComplete: true, removeOnFail: true };
const options = {
  worker_concurrency: CONCURRENCY,
  add: 'addBulk',
  chunk: CHUNK,
  job_opts: jobOpts,
  other: 'defaults',
  versions,
};

function emit(metric, value, jobs, extra = {}) {
  const line = {
    bench: 'queue',
    system: 'bullmq',
    workers: 1,
    metric,
    value: value >= 100 ? Math.round(value) : Math.round(value * 10) / 10,
    jobs,
    ...extra,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}

// wall clock in µs (same clock source as the C side's CLOCK_REALTIME)
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

const conn = () => new IORedis(redisUrl, { maxRetriesPerRequest: null });
const qconn = conn();
const wconn = conn();
const queue = new Queue('bench', { connection: qconn, defaultJobOptions: jobOpts });
await queue.waitUntilReady();

// ---- enqueue, then process, REPEAT times
let started = null; // latency phase: id -> start time
let completed = 0,
  failed = 0,
  tFirst = 0,
  cFirst = 0,
  tLast = 0,
  target = 0;
let onAllDone = null;
const worker = new Worker(
  'bench',
  async (job) => {
    if (started) started.set(job.id, nowUs());
  },
  { connection: wconn, concurrency: CONCURRENCY, autorun: false },
);
worker.on('completed', () => {
  completed++;
  if (!tFirst) {
    tFirst = performance.now();
    cFirst = completed;
  }
  if (completed >= target && onAllDone) {
    tLast = performance.now();
    onAllDone();
    onAllDone = null;
  }
});
worker.on('failed', () => failed++);
worker.on('error', (e) => console.error('bench.mjs worker error:', e.message));
// warm-up: the scripts load on first use
await queue.add('warmup', {});
await queue.drain(true);
const batch = Array.from({ length: CHUNK }, () => ({ name: 'noop', data: {} }));
for (let run = 1; run <= REPEAT; run++) {
  if (run > 1) await worker.pause();
  {
    const t0 = performance.now();
    for (let done = 0; done < JOBS; ) {
      const n = Math.min(CHUNK, JOBS - done);
      await queue.addBulk(n === CHUNK ? batch : batch.slice(0, n));
      done += n;
    }
    const dt = (performance.now() - t0) / 1000;
    emit('enqueue_jobs_per_s', JOBS / dt, JOBS, { run, batch: CHUNK, seconds: +dt.toFixed(3), options });
  }
  completed = 0;
  failed = 0;
  tFirst = 0;
  target = JOBS;
  const done = new Promise((resolve) => (onAllDone = resolve));
  if (run === 1) worker.run();
  else worker.resume();
  const timeout = setTimeout(() => {
    console.error(`bench.mjs: timed out with ${completed} of ${JOBS} jobs done`);
    process.exit(1);
  }, 300000);
  await done;
  clearTimeout(timeout);
  const dt = (tLast - tFirst) / 1000;
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
  const ok = completed === JOBS && failed === 0 && Object.values(counts).every((v) => v === 0);
  emit('processed_jobs_per_s', (completed - cFirst) / dt, JOBS, {
    run,
    seconds: +dt.toFixed(3),
    check: ok ? 'ok' : 'FAILED',
    completed,
    failed,
    counts,
    options,
  });
}

// ---- latency at light load: one job every INTERVAL_US, Worker idle
{
  started = new Map();
  const n = Math.max(1, Math.floor((SECONDS * 1e6) / INTERVAL_US));
  const t0 = new Map();
  const base = performance.now();
  for (let i = 0; i < n; i++) {
    const t = nowUs();
    const job = await queue.add('noop', { t0_us: t });
    t0.set(job.id, t);
    const wait = base + ((i + 1) * INTERVAL_US) / 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const deadline = Date.now() + 30000;
  while (started.size < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const lat = [...t0].filter(([id]) => started.has(id)).map(([id, t]) => started.get(id) - t);
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.min(lat.length, Math.max(1, Math.ceil((p / 100) * lat.length))) - 1];
  const extra = { interval_us: INTERVAL_US, options };
  emit('latency_us_p50', pct(50), lat.length, extra);
  emit('latency_us_p90', pct(90), lat.length, extra);
  emit('latency_us_p99', pct(99), lat.length, extra);
  emit('latency_us_max', lat[lat.length - 1], lat.length, extra);
}

process.stderr.write(`bench.mjs: bullmq ${versions.bullmq}, ioredis ${versions.ioredis}, node ${versions.node}\n`);
await worker.close();
await queue.close();
await qconn.quit();
await wconn.quit();
