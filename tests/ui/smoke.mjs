#!/usr/bin/env node
// tests/ui/smoke.mjs — headless-Chromium smoke test of the Meterline web UI.
//
// Starts its own billing-api (ML_API_BIN; BILLING_DATABASE_URL and
// BILLING_REDIS_URL passed through) on a free 127.0.0.1 port and one
// billing-worker process (ML_WORKER_BIN, BILLING_WORKERS=1, same storage
// directory) to ingest usage and run CSV imports, waits for /readyz, drives a
// fresh Chromium profile through the console the way a new customer would,
// and checks what is on screen and what the server answered.  The invoice
// steps start a second, throw-away Chromium for an approver, so that two
// people act on one invoice at once (a stale page meets the 409).  The report
// steps download PDFs through the page's links (Playwright download events)
// and compare them with what the API says about them.
//
//   ML_API_BIN    billing-api binary        (default ../../build-test/api/billing-api)
//   ML_WORKER_BIN billing-worker binary     (default: ../worker/billing-worker next to ML_API_BIN's directory)
//   ML_CHROMIUM   Chromium executable       (default /usr/bin/chromium)
//   ML_ARTIFACTS  screenshots + server log  (default $TMPDIR/meterline-ui)
//
// Prints "N passed, M failed" and exits non-zero on any failure.  The server
// and the browser are always stopped; the whole run is capped at 75 s.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.ML_API_BIN || path.resolve(HERE, '../../build-test/api/billing-api');
const WORKER_BIN = process.env.ML_WORKER_BIN || path.resolve(path.dirname(BIN), '../worker/billing-worker');
const CHROMIUM = process.env.ML_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ML_ARTIFACTS || path.join(os.tmpdir(), 'meterline-ui');
const DEADLINE_MS = 75_000;     // hard cap for the whole run (about 30 s on an idle machine)
const STEP_TIMEOUT_MS = 8_000;  // any single wait in the page
const T0 = Date.now();

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const OWNER = { email: `ui-smoke-${RUN}@example.test`, password: 'smoke-test-password-1', name: 'Sam Smoke', org: `Smoke Freight ${RUN}` };
const VIEWER = { email: `ui-viewer-${RUN}@example.test`, password: 'viewer-password-1', name: 'Vera Viewer' };
const ADMIN = { email: `ui-admin-${RUN}@example.test`, password: 'admin-password-1' };
const ACME = `acme-${RUN}`;
const GLOBEX = `globex-${RUN}`;
const LOGIN_MAX_FAILURES = 3;

let server = null;
let serverLog = '';
let worker = null;
let workerLog = '';
let context = null;
let userDataDir = null;
let page = null;
let passed = 0;
let failed = 0;
let skipped = 0;
let stop = false;
const consoleProblems = [];
const shots = [];

const log = (...a) => console.log(...a);
const elapsed = () => `${((Date.now() - T0) / 1000).toFixed(1)}s`;

class Fail extends Error {}
function assert(cond, msg) { if (!cond) throw new Fail(msg); }
function assertEq(actual, expected, what) {
  if (actual !== expected) throw new Fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// ---------------------------------------------------------------------------
// process plumbing

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitReady(base, ms) {
  const until = Date.now() + ms;
  let last = '';
  while (Date.now() < until) {
    if (server.exitCode !== null || server.signalCode) throw new Fail(`billing-api exited early (${server.exitCode ?? server.signalCode})`);
    try {
      const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
      last = `HTTP ${r.status}: ${await r.text()}`;
    } catch (e) { last = e.message; }
    await sleep(100);
  }
  throw new Fail(`/readyz not 200 within ${ms} ms (${last})`);
}

function runBin(args, stdin, env) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
    p.stdin.end(stdin);
  });
}

async function stopProc(p) {
  if (!p || p.exitCode !== null || p.signalCode) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(4000).then(() => false)])) return;
  p.kill('SIGKILL');
  await Promise.race([exited, sleep(1000)]);
}
const stopServer = () => stopProc(server);

let cleaned = false;
const cleanups = []; // extra browsers a step started
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of cleanups) await c();
  if (context) await Promise.race([context.close().catch(() => {}), sleep(5000)]);
  await stopProc(worker);
  await stopServer();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  try { fs.writeFileSync(path.join(ARTIFACTS, 'billing-api.log'), serverLog); } catch { /* best effort */ }
  try { fs.writeFileSync(path.join(ARTIFACTS, 'billing-worker.log'), workerLog); } catch { /* best effort */ }
}

// ---------------------------------------------------------------------------
// test steps

async function shot(name, fullPage = true) {
  if (!page) return;
  const file = path.join(ARTIFACTS, `ui-${String(shots.length + 1).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage, timeout: 5000 });
    shots.push(file);
  } catch (e) { log(`  (screenshot ${name} failed: ${e.message})`); }
}

async function step(name, fn) {
  if (stop) { skipped++; log(`skip ${name}`); return; }
  const t = Date.now();
  try {
    await fn();
    passed++;
    log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed++;
    stop = true; // later steps build on this one
    log(`FAIL ${name}: ${e instanceof Fail ? e.message : (e.stack || e)}`);
    await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`);
  }
}

// Click something and return the first matching API response it causes.
async function clickFor(locator, method, urlPart) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname.startsWith(urlPart)),
    locator.click(),
  ]);
  return resp;
}

const nav = (name) => page.locator('nav.sidenav').getByRole('link', { name, exact: true });
const errFor = (field) => page.locator(`[data-error-for="${field}"]:visible`);
const text = async (loc) => ((await loc.textContent()) || '').replace(/\s+/g, ' ').trim();

async function visible(loc, what) {
  try {
    await loc.first().waitFor({ state: 'visible' });
  } catch {
    throw new Fail(`${what} not visible`);
  }
}

async function login(email, password) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  return clickFor(page.getByRole('button', { name: 'Sign in' }), 'POST', '/v1/sessions');
}

async function logout() {
  const resp = await clickFor(page.getByRole('button', { name: 'Log out' }), 'DELETE', '/v1/sessions/current');
  assertEq(resp.status(), 204, 'DELETE /v1/sessions/current status');
  await visible(page.getByRole('heading', { name: 'Sign in' }), 'login page after logout');
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) if (/^ui-\d\d-.*\.png$/.test(f)) fs.rmSync(path.join(ARTIFACTS, f));
  assert(fs.existsSync(BIN), `billing-api not found at ${BIN} (set ML_API_BIN)`);
  assert(fs.existsSync(WORKER_BIN), `billing-worker not found at ${WORKER_BIN} (set ML_WORKER_BIN)`);
  assert(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set ML_CHROMIUM or apt-get install chromium)`);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'ml-ui-storage-'));
  const env = {
    ...process.env,
    BILLING_LISTEN: `127.0.0.1:${port}`,
    BILLING_LOG_LEVEL: process.env.BILLING_LOG_LEVEL || 'warn',
    BILLING_LOGIN_MAX_FAILURES: String(LOGIN_MAX_FAILURES),
    BILLING_LOGIN_WINDOW_S: '60',
    BILLING_STORAGE_DIR: storage,
    BILLING_API_THREADS: '2',
    BILLING_DB_THREADS: '4',
  };
  delete env.BILLING_PUBLIC_ORIGIN; // the browser's origin is the Host we listen on
  log(`billing-api ${BIN} on ${base}; artifacts in ${ARTIFACTS}`);
  server = spawn(BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  // the worker reads uploaded CSV files from the API's storage directory
  worker = spawn(WORKER_BIN, [], { env: { ...env, BILLING_WORKERS: '1', BILLING_SHUTDOWN_GRACE_S: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stdout.on('data', (d) => { workerLog += d; });
  worker.stderr.on('data', (d) => { workerLog += d; });
  server.on('exit', () => { if (!worker || worker.exitCode !== null || worker.signalCode) fs.rmSync(storage, { recursive: true, force: true }); });
  worker.on('exit', () => { if (server.exitCode !== null || server.signalCode) fs.rmSync(storage, { recursive: true, force: true }); });

  await step('billing-api becomes ready', () => waitReady(base, 15_000));

  await step('GET / serves the UI with a strict CSP', async () => {
    const r = await fetch(`${base}/`);
    assertEq(r.status, 200, 'GET / status');
    assert((r.headers.get('content-type') || '').startsWith('text/html'), 'GET / is HTML');
    const csp = r.headers.get('content-security-policy') || '';
    assert(csp.includes("script-src 'self'") && csp.includes("style-src 'self'"), `CSP header: ${csp}`);
    const html = await r.text();
    assert(html.includes('src="/ui/app.js"') && html.includes('href="/ui/app.css"'), 'index.html references /ui/app.js and /ui/app.css');
    assert(!/<style|\sstyle=|<script>(?!<\/script>)|\son[a-z]+=/i.test(html), 'index.html has no inline style or script');
    for (const [f, type] of [['app.js', 'text/javascript'], ['app.css', 'text/css'], ['logo.svg', 'image/svg+xml']]) {
      const a = await fetch(`${base}/ui/${f}`);
      assertEq(a.status, 200, `GET /ui/${f} status`);
      assert((a.headers.get('content-type') || '').startsWith(type), `/ui/${f} content type ${a.headers.get('content-type')}`);
    }
  });

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ml-ui-chromium-'));
  await step('Chromium starts with a fresh profile', async () => {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
        '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 860 },
      timeout: 15_000,
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('console', (m) => {
      const t = m.text();
      // Chromium logs every non-2xx fetch as "Failed to load resource"; the
      // test provokes 401/409/422/429 on purpose.
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (401|404|409|422|429)/.test(t)) consoleProblems.push(t);
    });
    page.on('pageerror', (e) => consoleProblems.push(`uncaught: ${e.message}`));
  });

  await step('signed-out visitor sees the login page', async () => {
    const resp = await page.goto(`${base}/`, { waitUntil: 'load' });
    assertEq(resp.status(), 200, 'page status');
    await visible(page.getByRole('heading', { name: 'Sign in' }), 'Sign in heading');
    await visible(page.getByRole('button', { name: 'Create an account' }), 'sign-up toggle');
    await shot('login');
  });

  await step('sign-up shows the server\'s field errors next to the fields (422)', async () => {
    await page.getByRole('button', { name: 'Create an account' }).click();
    await visible(page.getByRole('heading', { name: 'Create your account' }), 'sign-up heading');
    await page.getByLabel('Organization name').fill(OWNER.org);
    await page.getByLabel('Your name').fill(OWNER.name);
    await page.getByLabel('Email').fill('not-an-email');
    await page.getByLabel('Password').fill('short');
    const r = await clickFor(page.getByRole('button', { name: 'Create account' }), 'POST', '/v1/signup');
    assertEq(r.status(), 422, 'POST /v1/signup status');
    await visible(errFor('password'), 'password error');
    assert((await text(errFor('password'))).includes('at least 8'), `password error text: ${await text(errFor('password'))}`);
    await visible(errFor('email'), 'email error');
    await shot('signup-errors');
  });

  let org = null;
  let ownerToken = null;
  await step('sign-up creates the organization and opens the overview', async () => {
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    const r = await clickFor(page.getByRole('button', { name: 'Create account' }), 'POST', '/v1/signup');
    assertEq(r.status(), 201, 'POST /v1/signup status');
    const body = await r.json();
    org = body.organization;
    ownerToken = body.token;
    assertEq(body.user.role, 'owner', 'new user role');
    await visible(page.getByRole('heading', { name: 'Overview' }), 'Overview heading');
    assertEq(await text(page.locator('[data-testid="org-name"]')), OWNER.org, 'org name in the top bar');
    assertEq(await text(page.locator('[data-testid="role"]')), 'Owner', 'role badge');
    await visible(page.getByText(OWNER.name, { exact: true }), 'user name in the top bar');
    await visible(page.getByRole('heading', { name: 'Getting started' }), 'getting-started checklist');
    assertEq(await text(page.locator('[data-testid="count-customers"]')), '0', 'customer count');
    for (const done of ['Usage', 'Invoices', 'Reports']) assert(!(await text(nav(done))).includes('Soon'), `${done} is no longer marked coming soon`);
    const cookie = (await context.cookies(base)).find((c) => c.name === 'meterline_session');
    assert(cookie && cookie.httpOnly, 'meterline_session cookie is set and HttpOnly');
    await shot('overview');
  });

  await step('create a metric (bad code → field error, then 201)', async () => {
    await nav('Metrics').click();
    await visible(page.getByRole('heading', { name: 'Metrics', exact: true }), 'Metrics heading');
    await visible(page.getByText('No metrics yet'), 'empty state');
    await page.getByRole('button', { name: 'New metric' }).click();
    const unique = page.getByLabel('Unique property');
    assert(!(await unique.isVisible()), 'unique_property hidden for sum');
    await page.getByLabel('Aggregation').selectOption('unique_count');
    await visible(unique, 'unique_property for unique_count');
    await page.getByLabel('Aggregation').selectOption('sum');
    assert(!(await unique.isVisible()), 'unique_property hidden again for sum');
    await page.getByLabel('Code').fill('api calls!');
    await page.getByLabel('Name', { exact: true }).fill('API calls');
    await page.getByLabel('Unit').fill('call');
    let r = await clickFor(page.getByRole('button', { name: 'Create metric' }), 'POST', '/v1/metrics');
    assertEq(r.status(), 422, 'bad code status');
    await visible(errFor('code'), 'error next to Code');
    await page.getByLabel('Code').fill('api_calls');
    r = await clickFor(page.getByRole('button', { name: 'Create metric' }), 'POST', '/v1/metrics');
    assertEq(r.status(), 201, 'POST /v1/metrics status');
    const row = page.locator('tr[data-code="api_calls"]');
    await visible(row, 'metric row');
    const t = await text(row);
    assert(t.includes('API calls') && t.includes('sum') && t.includes('call'), `metric row text: ${t}`);
    await shot('metrics');
  });

  let plan = null;
  await step('create a plan with a graduated charge', async () => {
    await nav('Plans').click();
    await visible(page.getByText('No plans yet'), 'plans empty state');
    await page.getByRole('button', { name: 'New plan' }).click();
    const form = page.getByRole('form', { name: 'New plan' });
    await form.getByLabel('Code').fill('growth');
    await form.getByLabel('Name', { exact: true }).fill('Growth');
    assertEq(await form.getByLabel('Currency').inputValue(), org.currency, 'currency defaults to the org currency');
    await form.getByLabel('Base fee').fill('49.00');
    await form.getByLabel('Metric').selectOption('api_calls');
    await form.getByLabel('Pricing model').selectOption('graduated');
    const tiers = form.locator('tr.tier');
    assertEq(await tiers.count(), 2, 'tier rows');
    await tiers.nth(0).getByLabel('Up to').fill('1000');
    await tiers.nth(0).getByLabel('Unit price').fill('0');
    await tiers.nth(1).getByLabel('Unit price').fill('0.0015');
    assertEq(await text(tiers.nth(1).locator('.tier-from')), '1000', 'second tier starts where the first ends');
    await form.getByLabel('Included units').fill('100');
    await shot('plan-form');
    const r = await clickFor(page.getByRole('button', { name: 'Create plan' }), 'POST', '/v1/plans');
    const sent = r.request().postDataJSON();
    assertEq(r.status(), 201, `POST /v1/plans status (${await r.text()})`);
    assertEq(sent.charges[0].model, 'graduated', 'sent model');
    assertEq(sent.charges[0].tiers[0].up_to, '1000', 'first tier up_to sent as a string');
    assertEq(sent.charges[0].tiers[1].up_to, null, 'blank last up_to sent as null (∞)');
    assert(!('unit_price' in sent.charges[0]), 'no charge-level unit_price for graduated');
    plan = await r.json();
    const card = page.locator('section.plan-card[data-code="growth"]');
    await visible(card, 'plan card');
    const t = await text(card);
    for (const want of ['Growth', 'graduated', `${plan.base_fee} ${plan.currency}`, 'Up to 1000', 'Above 1000',
      `${plan.charges[0].tiers[1].unit_price} ${plan.currency} each`, 'Included: 100 call']) {
      assert(t.includes(want), `plan card shows "${want}": ${t}`);
    }
    await shot('plans');
  });

  await step('create a customer on that plan; duplicate external ID is refused beside the field', async () => {
    await nav('Customers').click();
    await visible(page.getByText('No customers yet'), 'customers empty state');
    await page.getByRole('button', { name: 'New customer' }).click();
    const form = page.getByRole('form', { name: 'New customer' });
    await form.getByLabel('External ID').fill(ACME);
    await form.getByLabel('Name', { exact: true }).fill('Acme Robotics');
    await form.getByLabel('Billing email').fill('billing@acme.example');
    await form.getByLabel('Plan').selectOption('growth');
    await form.getByLabel('City').fill('Berlin');
    await form.getByLabel('Country').fill('DE');
    await form.getByText('Require approval before invoices are issued').click();
    await shot('customer-form');
    let r = await clickFor(form.getByRole('button', { name: 'Create customer' }), 'POST', '/v1/customers');
    assertEq(r.status(), 201, 'POST /v1/customers status');
    const c = await r.json();
    assertEq(c.plan, 'growth', 'customer plan');
    assertEq(c.require_approval, true, 'customer require_approval');
    assertEq(c.billing_address && c.billing_address.city, 'Berlin', 'customer city');
    const row = page.locator(`tr[data-external-id="${ACME}"]`);
    await visible(row, 'new customer row');
    const t = await text(row);
    assert(t.includes('Acme Robotics') && t.includes('growth') && t.includes('Berlin, DE') && t.includes('Required'), `row text: ${t}`);

    await page.getByRole('button', { name: 'New customer' }).click();
    const form2 = page.getByRole('form', { name: 'New customer' });
    await form2.getByLabel('External ID').fill(ACME);
    await form2.getByLabel('Name', { exact: true }).fill('Globex Corporation');
    r = await clickFor(form2.getByRole('button', { name: 'Create customer' }), 'POST', '/v1/customers');
    assertEq(r.status(), 409, 'duplicate external_id status');
    await visible(errFor('external_id'), 'conflict error next to External ID');
    assert((await text(errFor('external_id'))).includes('already exists'), 'conflict message');
    await form2.getByLabel('External ID').fill(GLOBEX);
    r = await clickFor(form2.getByRole('button', { name: 'Create customer' }), 'POST', '/v1/customers');
    assertEq(r.status(), 201, 'second customer status');
    await visible(page.locator(`tr[data-external-id="${GLOBEX}"]`), 'second customer row');
    assertEq(await page.locator('tbody tr[data-external-id]').count(), 2, 'customers listed');
    await shot('customers');
  });

  await step('search narrows the customer list (server-side ?q=)', async () => {
    const box = page.getByRole('searchbox', { name: 'Search customers' });
    let [r] = await Promise.all([
      page.waitForResponse((x) => x.url().includes('/v1/customers?') && new URL(x.url()).searchParams.get('q') === 'acme'),
      box.fill('acme'),
    ]);
    assertEq(r.status(), 200, 'search status');
    await page.locator(`tr[data-external-id="${GLOBEX}"]`).waitFor({ state: 'detached' });
    assertEq(await page.locator('tbody tr[data-external-id]').count(), 1, 'rows matching "acme"');
    await visible(page.locator(`tr[data-external-id="${ACME}"]`), 'Acme row in results');
    await shot('customer-search');
    [r] = await Promise.all([
      page.waitForResponse((x) => new URL(x.url()).searchParams.get('q') === 'no-such-customer'),
      box.fill('no-such-customer'),
    ]);
    await visible(page.getByText('No customers match'), 'no-match state');
    await box.fill('acme');
    await visible(page.locator(`tr[data-external-id="${ACME}"]`), 'Acme row again');
  });

  await step('open and edit the customer (PATCH sends only changed fields)', async () => {
    await page.locator(`tr[data-external-id="${ACME}"]`).click();
    await visible(page.getByRole('heading', { name: 'Acme Robotics', exact: true }), 'customer heading');
    assertEq(new URL(page.url()).hash, `#/customers/${ACME}`, 'detail URL');
    const form = page.getByRole('form', { name: 'Edit customer' });
    await form.getByLabel('Name', { exact: true }).fill('Acme Robotics GmbH');
    await form.getByLabel('City').fill('Munich');
    const r = await clickFor(form.getByRole('button', { name: 'Save changes' }), 'PATCH', `/v1/customers/${ACME}`);
    assertEq(r.status(), 200, 'PATCH status');
    const sent = r.request().postDataJSON();
    assertEq(Object.keys(sent).sort().join(','), 'billing_address,name', 'PATCH body keys');
    assertEq(sent.billing_address.country, 'DE', 'address keeps the country');
    await visible(page.getByRole('heading', { name: 'Acme Robotics GmbH' }), 'updated heading');
    assertEq(await text(page.locator('[data-testid="customer-address"]')), 'Munich, DE', 'updated address');
    await shot('customer-detail');
    await page.getByRole('link', { name: 'Customers', exact: true }).first().click();
    await visible(page.locator(`tr[data-external-id="${ACME}"]`, { hasText: 'Acme Robotics GmbH' }), 'renamed customer in list');
  });

  await step('"Load more" pages through the customer list by cursor', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => String(i + 1).padStart(2, '0'));
    for (let i = 0; i < ids.length; i += 10) {
      const rs = await Promise.all(ids.slice(i, i + 10).map((n) => fetch(`${base}/v1/customers`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${ownerToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ external_id: `bulk-${n}-${RUN}`, name: `Depot ${n}`, billing_address: { city: 'Reno', country: 'US' } }),
      })));
      for (const r of rs) assertEq(r.status, 201, 'bulk POST /v1/customers (Bearer token from sign-up)');
    }
    await page.reload();
    const more = page.getByRole('button', { name: 'Load more' });
    await visible(more, 'Load more button');
    const rows = page.locator('tbody tr[data-external-id]');
    assertEq(await rows.count(), 50, 'rows on the first page');
    const [r] = await Promise.all([
      page.waitForResponse((x) => x.url().includes('/v1/customers?') && new URL(x.url()).searchParams.has('cursor')),
      more.click(),
    ]);
    assertEq(r.status(), 200, 'next page status');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-external-id]').length === 52);
    await more.waitFor({ state: 'hidden' });
    assertEq(await text(page.locator('.toolbar .count')), '52 customers', 'count after the last page');
  });

  // ---- usage: aggregates, raw events, CSV import (worker ingests) ----------
  const usageTotal = (metric) => page.locator(`[data-testid="usage-total-${metric}"]`);
  const postUsage = (events) => fetch(`${base}/v1/usage`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ownerToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  async function waitStored(n, what) {
    const until = Date.now() + 15_000;
    let got = -1;
    while (Date.now() < until) {
      if (worker.exitCode !== null || worker.signalCode) throw new Fail(`billing-worker exited (${worker.exitCode ?? worker.signalCode}): ${workerLog.trim().split('\n').slice(-5).join('\n')}`);
      const r = await fetch(`${base}/v1/usage?limit=100`, { headers: { Authorization: `Bearer ${ownerToken}` } });
      if (r.status === 200) got = (await r.json()).data.length;
      if (got >= n) return;
      await sleep(150);
    }
    throw new Fail(`${what}: ${got} of ${n} events stored after 15 s (is billing-worker running?)`);
  }
  const stamp = (msAgo) => new Date(Date.now() - msAgo).toISOString().replace(/\.\d+Z$/, 'Z');

  await step('usage page: empty states before any event', async () => {
    await nav('Usage').click();
    await visible(page.getByRole('heading', { name: 'Usage', exact: true }), 'Usage heading');
    assertEq(new URL(page.url()).hash, '#/usage', 'Usage URL');
    await visible(page.getByText('No usage in this range'), 'empty chart state');
    await visible(page.getByText('No events match'), 'empty events state');
    await visible(page.getByText('No imports yet'), 'empty imports state');
    await visible(page.getByRole('form', { name: 'Import CSV' }), 'import form for an owner');
    await shot('usage-empty');
  });

  // 0.1 + 0.2 + 12.45 + 7 is 19.750000000000004 in floating point
  const POSTED = [
    { event_id: `u1-${RUN}`, customer_id: ACME, metric: 'api_calls', quantity: '0.1', timestamp: stamp(4000), properties: { region: 'eu' } },
    { event_id: `u2-${RUN}`, customer_id: ACME, metric: 'api_calls', quantity: '0.2', timestamp: stamp(3000) },
    { event_id: `u3-${RUN}`, customer_id: ACME, metric: 'api_calls', quantity: '12.45', timestamp: stamp(2000) },
    { event_id: `u4-${RUN}`, customer_id: GLOBEX, metric: 'api_calls', quantity: '7', timestamp: stamp(1000) },
  ];
  await step('posted usage shows in the chart, the buckets and the events table (exact totals)', async () => {
    const r = await postUsage(POSTED);
    assertEq(r.status, 202, 'POST /v1/usage status');
    await waitStored(POSTED.length, 'posted events');
    const [agg] = await Promise.all([
      page.waitForResponse((x) => new URL(x.url()).pathname === '/v1/usage/aggregate'),
      page.getByRole('button', { name: 'Apply' }).click(),
    ]);
    assertEq(agg.status(), 200, 'aggregate status');
    const q = new URL(agg.url()).searchParams;
    assertEq(q.get('fill'), 'zero', 'fill=zero');
    assert(q.get('granularity') === 'day' && q.get('tz') && q.get('from') && q.get('to'), `aggregate query: ${q}`);
    await usageTotal('api_calls').waitFor();
    assertEq(await usageTotal('api_calls').getAttribute('data-value'), '19.75', 'exact total (data-value)');
    assertEq(await text(usageTotal('api_calls')), '19.75 call', 'total shown');
    assertEq(await text(page.locator('[data-testid="bucket-total"]')), '19.75', 'bucket table total');
    assert(await page.locator('svg.chart g.bar[data-quantity="19.75"]').count() === 1, 'one bar holds today\'s 19.75');
    const rows = page.locator('#usage-events tbody tr[data-event-id]');
    await rows.first().waitFor();
    assertEq(await rows.count(), 4, 'event rows');
    assertEq(await rows.first().getAttribute('data-event-id'), `u4-${RUN}`, 'newest event first');
    assertEq(await text(page.locator(`tr[data-event-id="u1-${RUN}"] td.num`)), '0.1', 'quantity shown verbatim');
    const utcTitle = await page.locator(`tr[data-event-id="u1-${RUN}"] td[title]`).first().getAttribute('title');
    assert(utcTitle.includes(POSTED[0].timestamp), `UTC time on hover: ${utcTitle}`);
    const href = await page.locator('[data-testid="usage-csv"]').getAttribute('href');
    const hq = new URL(href, base).searchParams;
    assert(hq.get('format') === 'csv' && hq.get('from') === q.get('from') && hq.get('to') === q.get('to'), `CSV link carries the filters: ${href}`);
    // Fetched from here with the browser's session cookie, not inside the page:
    // billing-api does not answer the next request on a keep-alive connection
    // that carried a streamed CSV, which would stall the rest of this run.
    const cookie = (await context.cookies(base)).find((c) => c.name === 'meterline_session');
    const dl = await fetch(new URL(href, base), { headers: { Cookie: `meterline_session=${cookie.value}`, Connection: 'close' } });
    const csv = `${dl.status} ${dl.headers.get('content-disposition')} ${await dl.text()}`;
    assert(csv.startsWith('200 attachment') && csv.includes(`u3-${RUN}`) && csv.includes('12.45'), `CSV download with the session cookie: ${csv.slice(0, 200)}`);
    await page.locator('svg.chart g.bar[data-quantity="19.75"]').hover();
    await visible(page.locator('.chart-tip', { hasText: '19.75 call' }), 'tooltip with the exact quantity');
    await shot('usage-chart');
  });

  await step('usage filters: one customer, then hourly in Asia/Kathmandu (+05:45)', async () => {
    const cust = page.getByLabel('Customer', { exact: true });
    const [r] = await Promise.all([
      page.waitForResponse((x) => new URL(x.url()).pathname === '/v1/usage/aggregate' && new URL(x.url()).searchParams.get('customer_id') === ACME),
      cust.fill(ACME), // a known external ID applies without a click
    ]);
    assertEq(r.status(), 200, 'filtered aggregate status');
    await visible(page.locator(`table.buckets-table[data-customer="${ACME}"]`), 'Acme buckets');
    assertEq(await usageTotal('api_calls').getAttribute('data-value'), '12.75', 'Acme total');
    await page.waitForFunction(() => document.querySelectorAll('#usage-events tbody tr[data-event-id]').length === 3);
    await page.getByLabel('Granularity').selectOption('hour');
    const [r2] = await Promise.all([
      page.waitForResponse((x) => new URL(x.url()).pathname === '/v1/usage/aggregate' && new URL(x.url()).searchParams.get('tz') === 'Asia/Kathmandu'),
      page.getByLabel('Time zone').selectOption('Asia/Kathmandu'),
    ]);
    assertEq(r2.status(), 200, `hourly Kathmandu aggregate status (${new URL(r2.url()).search})`);
    assert(new URL(r2.url()).searchParams.get('from').endsWith(':15:00Z'), `Kathmandu hours start at :15 UTC: ${new URL(r2.url()).searchParams.get('from')}`);
    await visible(page.locator(`table.buckets-table[data-gran="hour"][data-tz="Asia/Kathmandu"][data-customer="${ACME}"]`), 'hourly Kathmandu buckets');
    assertEq(await usageTotal('api_calls').getAttribute('data-value'), '12.75', 'Acme hourly total');
    assertEq(await page.locator('table.buckets-table tbody tr').count(), 168, 'seven days of hourly buckets');
  });

  await step('a 422 from the aggregate API lands next to the field it names', async () => {
    const from = page.getByLabel('From', { exact: true });
    const v = await from.inputValue();
    const [r] = await Promise.all([ // hh:30 in Kathmandu is hh:45 UTC: a quarter hour, but not an hour of the zone
      page.waitForResponse((x) => new URL(x.url()).pathname === '/v1/usage/aggregate' && new URL(x.url()).searchParams.get('from').endsWith(':45:00Z')),
      from.fill(v.replace(/:\d\d$/, ':30')),
    ]);
    assertEq(r.status(), 422, `misaligned from (${v} → :30) status for ${new URL(r.url()).search}`);
    await visible(errFor('from'), 'error next to From');
    assert((await text(errFor('from'))).includes('bucket boundary'), `from error: ${await text(errFor('from'))}`);
    await shot('usage-422');
    await page.getByLabel('Customer', { exact: true }).fill('');
    await page.getByLabel('Customer', { exact: true }).blur(); // closes the suggestion list, which would eat the next click
    await page.getByLabel('Granularity').selectOption('day');
    await visible(page.locator('table.buckets-table[data-gran="day"][data-customer=""]'), 'all customers again, daily');
    assertEq(await usageTotal('api_calls').getAttribute('data-value'), '19.75', 'total of all customers');
    assert(!(await errFor('from').count()), 'error cleared');
    await page.waitForFunction(() => document.querySelectorAll('#usage-events tbody tr[data-event-id]').length === 4);
    await page.locator('#usage-aggregates .loading').waitFor({ state: 'detached' });
  });

  await step('import a CSV through the page: upload, poll to "succeeded", exact counts', async () => {
    const t = stamp(500);
    const csvText = ['event_id,customer_id,metric,timestamp,quantity',
      `c1-${RUN},${ACME},api_calls,${t},2.5`,
      `c2-${RUN},${GLOBEX},api_calls,${t},3`,
      `u1-${RUN},${ACME},api_calls,${t},0.1`,
      `c3-${RUN},no-such-customer-${RUN},api_calls,${t},1`].join('\n');
    const form = page.getByRole('form', { name: 'Import CSV' });
    await form.getByLabel('CSV file').setInputFiles({ name: 'usage-smoke.csv', mimeType: 'text/csv', buffer: Buffer.from(`${csvText}\n`) });
    await visible(form.getByText('usage-smoke.csv'), 'chosen file name');
    await form.getByLabel('Skip the row').check();
    const r = await clickFor(form.getByRole('button', { name: 'Upload and import' }), 'POST', '/v1/usage/imports');
    assertEq(r.status(), 202, 'POST /v1/usage/imports status');
    assertEq(new URL(r.url()).searchParams.get('on_error'), 'skip', 'on_error sent');
    assert((r.request().headers()['content-type'] || '').startsWith('multipart/form-data'), 'multipart upload');
    const { import_id: id } = await r.json();
    const live = page.locator(`#usage-import .import-detail[data-import-id="${id}"]`);
    await page.locator(`#usage-import .import-detail[data-import-id="${id}"][data-status="succeeded"]`).waitFor({ timeout: 15_000 }).catch(async () => {
      throw new Fail(`import did not succeed: ${await text(page.locator('#usage-import'))}`);
    });
    for (const [k, v] of [['rows', '4'], ['imported', '2'], ['duplicates', '1'], ['rejected', '1']]) {
      assertEq(await text(live.locator(`[data-testid="import-${k}"]`)), v, `import ${k}`);
    }
    await visible(live.getByText('Line 5'), 'rejected row named by its line');
    await visible(page.locator(`#usage-imports tr[data-import-id="${id}"][data-status="succeeded"]`), 'import in the recent list');
    await visible(page.locator(`[data-testid="usage-total-api_calls"][data-value="25.25"]`), 'chart total includes the imported rows');
    await visible(page.locator(`#usage-events tr[data-event-id="c1-${RUN}"]`), 'imported event in the table');
    await shot('usage-import');
  });

  // ---- invoices: generate, lines = API, submit → approve (second browser) →
  // issue, a stale button's 409, dispute thread, mark paid, billing run -------
  const APPROVER = { email: `ui-approver-${RUN}@example.test`, password: 'approver-password-1', name: 'Abe Approver' };
  const month = new Date().toISOString().slice(0, 7); // the posted usage is in this month (UTC)
  const now = new Date();
  const prevMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
  const asOwner = (p, init = {}) => fetch(`${base}${p}`, { ...init, headers: { Authorization: `Bearer ${ownerToken}`, 'Content-Type': 'application/json', ...(init.headers || {}) } });
  // a file the page downloaded (Playwright download event), as bytes
  const downloaded = async (dl) => fs.readFileSync(await dl.path());
  const isPdf = (buf) => buf.subarray(0, 5).toString('latin1') === '%PDF-' && /%%EOF\s*$/.test(buf.subarray(-16).toString('latin1'));
  // the page redraws after the response: wait for the badge rather than read it
  const statusIs = (label, what) => visible(page.locator('#invoice-details [data-testid="invoice-status"]', { hasText: label }), `${what}: status "${label}"`);
  let invId = null;
  let invJson = null;

  await step('invoices: generate a draft from the page (job polled until done)', async () => {
    await nav('Invoices').click();
    await visible(page.getByRole('heading', { name: 'Invoices', exact: true }), 'Invoices heading');
    assertEq(await page.getByRole('tab', { name: 'Current' }).getAttribute('aria-selected'), 'true', 'Current tab selected');
    await visible(page.getByText('No open invoices'), 'empty invoice list');
    // last month: past the 100 included units and the free first tier (priced tiers), and
    // outside the current month the usage checks below add up
    const u = await postUsage([{ event_id: `inv1-${RUN}`, customer_id: ACME, metric: 'api_calls', quantity: '1500', timestamp: `${prevMonth}-01T12:00:00Z` }]);
    assertEq(u.status, 202, 'POST /v1/usage (last month) status');
    await waitStored(7, 'last month\'s event');
    await page.getByRole('button', { name: 'Generate invoice' }).click();
    const form = page.getByRole('form', { name: 'Generate invoice' });
    await form.getByLabel('Customer').fill(ACME);
    assertEq(await form.getByLabel('Month', { exact: true }).inputValue(), prevMonth, 'the month defaults to last month');
    const r = await clickFor(form.getByRole('button', { name: 'Generate draft' }), 'POST', '/v1/invoices');
    assertEq(r.status(), 202, 'POST /v1/invoices status');
    const sent = r.request().postDataJSON();
    assertEq(sent.customer_id, ACME, 'customer sent');
    assert(sent.period_start === `${prevMonth}-01` && sent.period_end === `${month}-01`, `period sent: ${JSON.stringify(sent)}`);
    const result = page.locator('[data-testid="generate-result"]');
    await result.waitFor({ timeout: 15_000 });
    assert((await text(result)).startsWith('Draft created'), `generate result: ${await text(result)}`);
    invId = await result.getAttribute('data-invoice-id');
    const api = await asOwner(`/v1/invoices/${invId}`);
    assertEq(api.status, 200, 'GET /v1/invoices/{id}');
    invJson = await api.json();
    assert((await text(result)).includes(`${invJson.total} ${invJson.currency}`), 'result names the total');
    await visible(page.locator(`tr[data-invoice-id="${invId}"][data-status="draft"]`), 'draft in the Current list');
    await shot('invoice-generated');
  });

  await step('invoice page: lines, sub-lines and totals exactly as the API gives them', async () => {
    await page.getByRole('link', { name: 'Open invoice →' }).click();
    await visible(page.getByRole('heading', { name: 'Draft invoice' }), 'draft heading');
    assertEq(new URL(page.url()).hash, `#/invoices/${invId}`, 'invoice URL');
    const lines = invJson.lines.filter((l) => l.kind !== 'tax');
    assert(lines.some((l) => l.kind === 'base_fee') && lines.some((l) => l.kind === 'usage'), `lines: ${JSON.stringify(invJson.lines.map((l) => l.kind))}`);
    assertEq(await page.locator('#invoice-lines tr.inv-line').count(), lines.length, 'line rows');
    for (const l of lines) {
      const tr = page.locator(`#invoice-lines tr.inv-line[data-position="${l.position}"]`);
      const t = await text(tr);
      assert(t.includes(l.description) && t.includes(`${l.amount} ${invJson.currency}`), `line ${l.position} shows "${l.description}" and ${l.amount}: ${t}`);
      assertEq(await tr.locator('td.amount').getAttribute('data-value'), l.amount, `line ${l.position} amount`);
      if (l.quantity != null) assertEq(await tr.locator('td.num').first().getAttribute('data-value'), l.quantity, `line ${l.position} quantity`);
    }
    const tiered = lines.find((l) => (l.sub_lines || []).some((x) => x.kind === 'tier'));
    assert(tiered, 'the graduated charge has tier sub-lines');
    const subs = page.locator(`#invoice-lines tbody.sub-lines[data-line="${lines.indexOf(tiered)}"] tr.sub-line`);
    assertEq(await subs.count(), tiered.sub_lines.length, 'tier sub-lines shown');
    await visible(subs.first(), 'tier sub-lines expanded');
    assert((await text(subs.first())).includes(tiered.sub_lines[0].description), 'tier sub-line description');
    const toggle = page.locator('#invoice-lines .sub-toggle').first();
    await toggle.click();
    assertEq(await toggle.getAttribute('aria-expanded'), 'false', 'sub-lines collapse');
    await toggle.click();
    for (const [k, v] of [['subtotal', invJson.subtotal], ['tax', invJson.tax], ['total', invJson.total]]) {
      const cell = page.locator(`[data-testid="invoice-${k}"]`);
      assertEq(await cell.getAttribute('data-value'), v, `${k} value`);
      assertEq(await text(cell), `${v} ${invJson.currency}`, `${k} shown`);
    }
    assertEq(await text(page.locator('[data-testid="invoice-total-head"]')), `${invJson.total} ${invJson.currency}`, 'total in the header');
    // Acme requires approval: a draft is submitted, not issued
    await visible(page.getByRole('button', { name: 'Submit for approval' }), 'Submit button');
    assertEq(await page.getByRole('button', { name: 'Issue invoice' }).count(), 0, 'no Issue on a draft that needs approval');
    await visible(page.locator('#invoice-trail tr[data-action="generate"]'), 'generation in the audit trail');
    await shot('invoice-draft');
  });

  await step('draft: "Preview PDF" queues an invoice report and downloads it when ready', async () => {
    const [dl, r] = await Promise.all([
      page.waitForEvent('download', { timeout: 15_000 }),
      clickFor(page.getByRole('button', { name: 'Preview PDF' }), 'POST', '/v1/reports'),
    ]);
    assert([200, 202].includes(r.status()), `POST /v1/reports status ${r.status()}`);
    assertEq(JSON.stringify(r.request().postDataJSON()), JSON.stringify({ kind: 'invoice', invoice_id: invId }), 'preview request');
    const buf = await downloaded(dl);
    assert(isPdf(buf), `the preview is a PDF (starts ${JSON.stringify(buf.subarray(0, 8).toString('latin1'))}, ${buf.length} bytes)`);
    const rep = await (await asOwner(`/v1/reports/${(await r.json()).id}`)).json();
    assertEq(rep.status, 'succeeded', 'preview report status');
    assertEq(buf.length, rep.size_bytes, 'preview size = size_bytes');
    await visible(page.locator('[data-testid="invoice-preview-link"]'), 'a link to download the preview again');
    assertEq(await page.getByRole('link', { name: 'Download PDF' }).count(), 0, 'no Download PDF before the invoice is issued');
    await shot('invoice-preview', false);
  });

  let browser2 = null;
  let page2 = null;
  cleanups.push(async () => { if (browser2) await Promise.race([browser2.close().catch(() => {}), sleep(5000)]); });
  await step('submit; an approver (second browser) approves; the stale Approve gets the 409; issue assigns the number', async () => {
    let r = await clickFor(page.getByRole('button', { name: 'Submit for approval' }), 'POST', `/v1/invoices/${invId}/submit`);
    assertEq(r.status(), 200, 'submit status');
    await statusIs('Pending approval', 'status after submit');
    await visible(page.getByRole('button', { name: 'Approve' }), 'owners may approve too');
    const u = await asOwner('/v1/users', { method: 'POST', body: JSON.stringify({ ...APPROVER, role: 'approver' }) });
    assertEq(u.status, 201, 'POST /v1/users (approver)');

    browser2 = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'], timeout: 15_000 });
    page2 = await (await browser2.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    page2.setDefaultTimeout(STEP_TIMEOUT_MS);
    page2.on('pageerror', (e) => consoleProblems.push(`uncaught (approver): ${e.message}`));
    await page2.goto(`${base}/#/invoices/${invId}`);
    await page2.getByLabel('Email').fill(APPROVER.email);
    await page2.getByLabel('Password').fill(APPROVER.password);
    await page2.getByRole('button', { name: 'Sign in' }).click();
    await visible(page2.getByRole('button', { name: 'Approve' }), 'Approve for the approver');
    for (const no of ['Issue invoice', 'Void', 'Submit for approval', 'Mark paid']) {
      assertEq(await page2.getByRole('button', { name: no, exact: true }).count(), 0, `no "${no}" for an approver`);
    }
    assertEq(await page2.getByRole('button', { name: 'Generate invoice' }).count(), 0, 'approvers do not generate');
    await page2.getByRole('button', { name: 'Reject', exact: true }).click();
    await page2.getByRole('button', { name: 'Reject invoice' }).click();
    await visible(page2.locator('[data-error-for="comment"]:visible'), 'a rejection needs a comment');
    await page2.getByRole('button', { name: 'Cancel' }).click();
    const [a] = await Promise.all([
      page2.waitForResponse((x) => x.request().method() === 'POST' && new URL(x.url()).pathname === `/v1/invoices/${invId}/approve`),
      page2.getByRole('button', { name: 'Approve' }).click(),
    ]);
    assertEq(a.status(), 200, 'approve status');
    await visible(page2.locator('#invoice-details [data-testid="invoice-status"]', { hasText: 'Approved' }), 'approved on the approver\'s page');
    const p2shot = path.join(ARTIFACTS, `ui-${String(shots.length + 1).padStart(2, '0')}-approver-approved.png`);
    if (await page2.screenshot({ path: p2shot, fullPage: true }).then(() => true, () => false)) shots.push(p2shot);

    r = await clickFor(page.getByRole('button', { name: 'Approve' }), 'POST', `/v1/invoices/${invId}/approve`);
    assertEq(r.status(), 409, 'approving twice (stale page) status');
    const msg = (await r.json()).error.message;
    await visible(page.locator('[data-testid="action-error"]', { hasText: msg }), `409 message "${msg}" on screen`);
    assert(msg.includes('approved'), `409 message names the current state: ${msg}`);
    await visible(page.locator('#invoice-details [data-testid="invoice-status"]', { hasText: 'Approved' }), 'page refreshed to the current state');
    await shot('invoice-409');

    r = await clickFor(page.getByRole('button', { name: 'Issue invoice' }), 'POST', `/v1/invoices/${invId}/issue`);
    assertEq(r.status(), 200, 'issue status');
    const issued = await r.json();
    assert(/^[A-Z0-9]+-\d{4}-\d{6}$/.test(issued.number || ''), `issued number: ${issued.number}`);
    await visible(page.getByRole('heading', { name: `Invoice ${issued.number}` }), 'number in the heading');
    assertEq(await text(page.locator('[data-testid="invoice-number"]')), issued.number, 'number in the details');
    await statusIs('Issued', 'status after issue');
    await page.locator('#invoice-trail tr[data-action="issue"]').waitFor();
    const trail = await page.locator('#invoice-trail tr[data-action]').evaluateAll((rows) => rows.map((x) => x.dataset.action));
    assertEq(trail.join(','), 'generate,submit,approve,issue', 'audit trail actions');
    await visible(page.locator('#invoice-trail tr[data-action="approve"]', { hasText: APPROVER.email }), 'the approver named in the trail');
    invJson = issued;
    await shot('invoice-issued');
  });

  await step('issued invoice: "PDF is being prepared" retries with a backoff, then "Download PDF" gives the PDF', async () => {
    // Issuing renders the PDF in the background; it is usually ready within
    // milliseconds, so the first two checks are answered 409 here to see the
    // waiting state and its retries.
    const pdfPath = `/v1/invoices/${invId}/pdf`;
    const checks = [];
    const held = async (route) => {
      checks.push({ at: Date.now(), inm: route.request().headers()['if-none-match'] });
      if (checks.length > 2) { await route.continue(); return; }
      await route.fulfill({ status: 409, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
        body: JSON.stringify({ error: { code: 'conflict', message: 'the invoice PDF is being rendered', details: [{ field: 'report', message: 'running' }] } }) });
    };
    const isPdfUrl = (u) => u.pathname === pdfPath;
    await page.route(isPdfUrl, held);
    try {
      await page.reload();
      await visible(page.locator('[data-testid="invoice-pdf-preparing"]', { hasText: 'PDF is being prepared' }), '"PDF is being prepared"');
      await shot('invoice-pdf-preparing', false);
      const link = page.getByRole('link', { name: 'Download PDF' });
      await link.waitFor({ timeout: 10_000 }).catch(async () => { throw new Fail(`no Download PDF link: ${await text(page.locator('[data-testid="invoice-pdf"]'))}`); });
      assertEq(checks.length, 3, 'checks before the link shows');
      assert(checks.every((c) => c.inm === '*'), `checks ask with If-None-Match: * (${JSON.stringify(checks)})`);
      const gaps = checks.slice(1).map((c, i) => c.at - checks[i].at);
      assert(gaps.every((g) => g >= 900), `retries wait (Retry-After 1 s): ${gaps.join(', ')} ms`);
    } finally {
      await page.unroute(isPdfUrl, held);
    }
    const link = page.getByRole('link', { name: 'Download PDF' });
    assertEq(await link.getAttribute('href'), pdfPath, 'link target');
    const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const buf = await downloaded(dl);
    assert(isPdf(buf), `the invoice PDF is a PDF (starts ${JSON.stringify(buf.subarray(0, 8).toString('latin1'))}, ${buf.length} bytes)`);
    assert(dl.suggestedFilename().endsWith('.pdf'), `file name ${dl.suggestedFilename()}`);
    const api = await asOwner(pdfPath);
    assertEq(api.status, 200, `GET ${pdfPath}`);
    const served = Buffer.from(await api.arrayBuffer());
    assert(served.equals(buf), `downloaded ${buf.length} bytes, the API serves ${served.length}`);
    assertEq(await page.getByRole('button', { name: 'Preview PDF' }).count(), 0, 'no preview once issued');
    await shot('invoice-pdf-ready', false);

    // the last rendering failed (answered here): "Render again" requests it anew
    let failedOnce = false;
    const failing = async (route) => {
      if (failedOnce) { await route.continue(); return; }
      failedOnce = true;
      await route.fulfill({ status: 409, contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'conflict', message: 'rendering the invoice PDF failed (report x: disk full)', details: [{ field: 'report', message: 'failed' }] } }) });
    };
    await page.route(isPdfUrl, failing);
    try {
      await page.reload();
      await visible(page.locator('[data-testid="invoice-pdf-failed"]'), 'the failed rendering named');
      const r = await clickFor(page.getByRole('button', { name: 'Render again' }), 'POST', '/v1/reports');
      assert([200, 202].includes(r.status()), `POST /v1/reports status ${r.status()}`);
      assertEq(JSON.stringify(r.request().postDataJSON()), JSON.stringify({ kind: 'invoice', invoice_id: invId }), 'render-again request');
      await visible(page.getByRole('link', { name: 'Download PDF' }), 'Download PDF after rendering again');
    } finally {
      await page.unroute(isPdfUrl, failing);
    }
  });

  await step('dispute: open it, see it in the thread, the approver replies, owner resolves', async () => {
    const form = page.getByRole('form', { name: 'Open a dispute' });
    await form.getByLabel('Open a dispute').fill(`Why 49.00 for ${RUN}?`);
    const r = await clickFor(form.getByRole('button', { name: 'Open dispute' }), 'POST', `/v1/invoices/${invId}/disputes`);
    assertEq(r.status(), 201, 'POST disputes status');
    const d = await r.json();
    const thread = page.locator(`article.dispute[data-dispute-id="${d.id}"]`);
    await visible(thread.locator('.msg-body', { hasText: `Why 49.00 for ${RUN}?` }), 'first message in the thread');
    assertEq(await thread.getAttribute('data-status'), 'open', 'dispute open');
    await visible(page.locator('#invoice-details', { hasText: '1 open dispute' }), 'open dispute count');
    await page2.reload();
    const t2 = page2.locator(`article.dispute[data-dispute-id="${d.id}"]`);
    await t2.getByLabel('Reply', { exact: true }).fill('Base fee of the Growth plan.');
    const [m] = await Promise.all([
      page2.waitForResponse((x) => x.request().method() === 'POST' && new URL(x.url()).pathname === `/v1/disputes/${d.id}/messages`),
      t2.getByRole('button', { name: 'Send reply' }).click(),
    ]);
    assertEq(m.status(), 201, 'approver reply status');
    assertEq(await t2.getByRole('button', { name: 'Resolve dispute' }).count(), 0, 'approvers do not resolve');
    await page.reload();
    await visible(thread.locator('.msg-body', { hasText: 'Base fee of the Growth plan.' }), 'reply in the owner\'s thread');
    await thread.getByLabel('Reply', { exact: true }).fill('Thanks, resolved.');
    const res = await clickFor(thread.getByRole('button', { name: 'Resolve dispute' }), 'POST', `/v1/disputes/${d.id}/resolve`);
    assertEq(res.status(), 200, 'resolve status');
    await visible(page.locator(`article.dispute[data-dispute-id="${d.id}"][data-status="resolved"]`), 'dispute resolved');
    assertEq(await page.locator(`article.dispute[data-dispute-id="${d.id}"] .msg`).count(), 3, 'three messages in the thread');
    await visible(page.locator('#invoice-trail tr[data-action="dispute_resolve"]'), 'resolution in the audit trail');
    await shot('invoice-dispute');
  });

  await step('mark paid: the invoice moves from Current to Past', async () => {
    const r = await clickFor(page.getByRole('button', { name: 'Mark paid' }), 'POST', `/v1/invoices/${invId}/mark-paid`);
    assertEq(r.status(), 200, 'mark-paid status');
    await statusIs('Paid', 'status after mark paid');
    await visible(page.locator('[data-testid="no-actions"]', { hasText: 'paid' }), 'nothing more to do');
    await page.getByRole('link', { name: 'Invoices', exact: true }).first().click();
    await visible(page.getByText('No open invoices'), 'no current invoice left');
    await page.getByRole('tab', { name: 'Past' }).click();
    const row = page.locator(`tr[data-invoice-id="${invId}"][data-status="paid"]`);
    await visible(row, 'paid invoice in Past');
    const t = await text(row);
    assert(t.includes(invJson.number) && t.includes(`${invJson.total} ${invJson.currency}`), `past row: ${t}`);
  });

  await step('run billing for the month: progress, then done/total as the API counts them', async () => {
    const p = await asOwner(`/v1/customers/${GLOBEX}`, { method: 'PATCH', body: JSON.stringify({ plan: 'growth' }) });
    assertEq(p.status, 200, 'Globex on the plan too');
    await page.getByRole('button', { name: 'Run billing for a month' }).click();
    const form = page.getByRole('form', { name: 'Run billing' });
    await form.getByLabel('Month', { exact: true }).fill(month);
    const r = await clickFor(form.getByRole('button', { name: 'Start billing run' }), 'POST', '/v1/billing-runs');
    assert([200, 202].includes(r.status()), `POST /v1/billing-runs status ${r.status()}`);
    const run = await r.json();
    const done = page.locator(`.run-detail[data-run-id="${run.id}"][data-status="succeeded"]`);
    await done.waitFor({ timeout: 20_000 }).catch(async () => { throw new Fail(`run did not succeed: ${await text(page.locator('.run-live'))}`); });
    const api = await (await asOwner(`/v1/billing-runs/${run.id}`)).json();
    assertEq(api.total, 2, 'customers with a plan');
    for (const k of ['total', 'done', 'failed', 'skipped']) assertEq(await text(done.locator(`[data-testid="run-${k}"]`)), String(api[k]), `run ${k}`);
    assertEq(await text(done.locator('[data-testid="run-progress"]')), `${api.done + api.failed} of ${api.total} customers`, 'run progress');
    await page.getByRole('tab', { name: 'Current' }).click();
    await visible(page.locator('tr[data-status="draft"]', { hasText: GLOBEX }), 'Globex draft from the run');
    await shot('invoice-billing-run');
  });

  await step('reports: request last month\'s usage report, follow it with long polls to "succeeded", download it', async () => {
    const polls = [];
    const onReq = (rq) => {
      const u = new URL(rq.url());
      if (/^\/v1\/reports\/[^/]+$/.test(u.pathname)) polls.push(u.searchParams.get('wait'));
    };
    page.on('request', onReq);
    try {
      await nav('Reports').click();
      await visible(page.getByRole('heading', { name: 'Reports', exact: true }), 'Reports heading');
      assertEq(new URL(page.url()).hash, '#/reports', 'Reports URL');
      await visible(page.locator('#reports tr[data-kind="invoice"][data-status="succeeded"]', { hasText: invJson.number }), 'the issued invoice\'s PDF listed');
      const form = page.getByRole('form', { name: 'Request a usage report' });
      assertEq(await form.getByLabel('From').inputValue(), `${prevMonth}-01`, 'from defaults to the first day of last month');
      assertEq(await form.getByLabel('To (exclusive)').inputValue(), `${month}-01`, 'to defaults to the first day of this month');
      await form.getByLabel('Customer').fill(ACME);
      const r = await clickFor(form.getByRole('button', { name: 'Request report' }), 'POST', '/v1/reports');
      assertEq(r.status(), 202, 'POST /v1/reports status');
      assertEq(JSON.stringify(r.request().postDataJSON()), JSON.stringify({ kind: 'usage', customer_id: ACME, from: `${prevMonth}-01`, to: `${month}-01` }), 'request body');
      const queued = await r.json();
      const done = page.locator(`#reports tr[data-report-id="${queued.id}"][data-status="succeeded"]`);
      await done.waitFor({ timeout: 15_000 }).catch(async () => {
        throw new Fail(`report did not succeed: ${await text(page.locator(`#reports tr[data-report-id="${queued.id}"]`))}`);
      });
      assertEq(await text(done.locator('[data-testid="report-status"]')), 'Succeeded', 'status badge');
      assert((await text(done)).includes(ACME), `the row names the customer: ${await text(done)}`);
      // followed by long polls, not a timer (none at all if it was done before the POST answered)
      assert(polls.every((w) => Number(w) > 0) && polls.length <= 4 && (polls.length > 0 || queued.status === 'succeeded'),
        `GET /v1/reports/{id} requests (their ?wait=): ${JSON.stringify(polls)}`);
      const rep = await (await asOwner(`/v1/reports/${queued.id}`)).json();
      assertEq(rep.status, 'succeeded', 'API status');
      const size = await done.locator('[data-testid="report-size"]').getAttribute('data-value');
      assertEq(size, String(rep.size_bytes), 'size_bytes in the row');
      const [dl] = await Promise.all([page.waitForEvent('download'), done.locator('a[download]').click()]);
      const buf = await downloaded(dl);
      assert(isPdf(buf), `the report is a PDF (starts ${JSON.stringify(buf.subarray(0, 8).toString('latin1'))})`);
      assertEq(String(buf.length), size, 'downloaded bytes = the row\'s size_bytes');
      assertEq(crypto.createHash('sha256').update(buf).digest('hex'), rep.sha256, 'sha256 of the download');
      assert(dl.suggestedFilename().endsWith('.pdf'), `file name ${dl.suggestedFilename()}`);
      await shot('reports');

      // the same request while one is running: 200 with that report (answered
      // here as the API would, since a real render is over in milliseconds)
      const same = async (route) => (route.request().method() !== 'POST' ? route.continue()
        : route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...rep, status: 'running', progress: 40, finished_at: null }) }));
      const isCreate = (u) => u.pathname === '/v1/reports';
      await page.route(isCreate, same);
      try {
        await form.getByRole('button', { name: 'Request report' }).click();
        await visible(page.getByText('The same report is already being prepared; showing it.'), 'the 200 is named in a toast');
        await visible(page.locator(`#reports tr[data-report-id="${rep.id}"][data-status="succeeded"].fresh`), 'that report\'s row, followed to its real status');
        assertEq(await page.locator(`#reports tr[data-report-id="${rep.id}"]`).count(), 1, 'one row for the report');
      } finally {
        await page.unroute(isCreate, same);
      }
    } finally {
      page.off('request', onReq);
    }
  });

  await step('reports: filters (kind, status, customer) ask the API and clear again', async () => {
    const list = (pred) => page.waitForResponse((x) => x.request().method() === 'GET' && new URL(x.url()).pathname === '/v1/reports' && pred(new URL(x.url()).searchParams));
    let [resp] = await Promise.all([list((q) => q.get('kind') === 'usage'), page.getByLabel('Kind').selectOption('usage')]);
    assertEq(resp.status(), 200, 'kind filter status');
    await page.locator('#reports tr[data-kind="invoice"]').first().waitFor({ state: 'detached' });
    assert(await page.locator('#reports tr[data-kind="usage"]').count() >= 1, 'usage reports listed');
    [resp] = await Promise.all([list((q) => q.get('status') === 'failed'), page.getByLabel('Status').selectOption('failed')]);
    await visible(page.getByText('No reports match'), 'no failed usage report');
    [resp] = await Promise.all([list((q) => !q.get('kind') && !q.get('status')), page.getByRole('button', { name: 'Clear filters' }).click()]);
    await visible(page.locator('#reports tr[data-kind="invoice"]'), 'invoice PDFs back after clearing');
    [resp] = await Promise.all([list((q) => q.get('customer_id') === GLOBEX), page.locator('#reports').getByLabel('Customer').fill(GLOBEX)]);
    await visible(page.getByText('No reports match'), 'no report for Globex');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await visible(page.locator('#reports tr[data-kind="usage"]'), 'usage reports back after clearing');
  });

  let key = null;
  await step('create an API key: shown once, works, copy button', async () => {
    await nav('Settings').click();
    await visible(page.getByRole('heading', { name: 'API keys' }), 'API keys section');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const form = page.getByRole('form', { name: 'New API key' });
    await form.getByLabel('Name').fill('CI smoke');
    await form.getByText('read', { exact: true }).click();
    const r = await clickFor(form.getByRole('button', { name: 'Create key' }), 'POST', '/v1/api-keys');
    assertEq(r.status(), 201, 'POST /v1/api-keys status');
    const k = await r.json();
    key = k;
    assertEq(k.scopes.slice().sort().join(','), 'read,usage:write', 'key scopes');
    const shown = page.locator('[data-testid="new-key"]');
    await visible(shown, 'new key field');
    assertEq(await shown.inputValue(), k.key, 'key shown');
    assert(k.key.startsWith('mk_'), 'key has the mk_ prefix');
    await visible(page.getByRole('button', { name: 'Copy' }), 'copy button');
    await visible(page.getByText('will not be shown again'), 'shown-once warning');
    await visible(page.locator(`tr[data-key-id="${k.id}"]`, { hasText: `${k.prefix}…` }), 'key listed by prefix');
    await shot('api-key-created');
    const api = await fetch(`${base}/v1/customers?q=acme`, { headers: { Authorization: `Bearer ${k.key}` } });
    assertEq(api.status, 200, 'the new key reads customers');
    assertEq((await api.json()).data.length, 1, 'customers visible to the key');
    await page.getByRole('button', { name: 'I have stored it safely' }).click();
    await shown.waitFor({ state: 'detached' });
    assert(!(await page.content()).includes(k.key), 'key gone from the page after dismissal');
    await page.reload();
    await visible(page.locator(`tr[data-key-id="${k.id}"]`), 'key row after reload');
    assert(!(await page.content()).includes(k.key), 'key never shown again after reload');
  });

  await step('owner adds a viewer to the team', async () => {
    await page.getByRole('button', { name: 'Add member' }).click();
    const form = page.getByRole('form', { name: 'Add team member' });
    await form.getByLabel('Name').fill(VIEWER.name);
    await form.getByLabel('Email').fill(VIEWER.email);
    await form.getByLabel('Initial password').fill(VIEWER.password);
    await form.getByLabel('Role').selectOption('viewer');
    const r = await clickFor(form.getByRole('button', { name: 'Add member' }), 'POST', '/v1/users');
    assertEq(r.status(), 201, 'POST /v1/users status');
    await visible(page.locator(`tr[data-email="${VIEWER.email}"]`, { hasText: 'Viewer' }), 'viewer in the team list');
    await shot('settings');
  });

  await step('revoking the API key makes it stop working', async () => {
    const row = page.locator(`tr[data-key-id="${key.id}"]`);
    await row.getByRole('button', { name: 'Revoke' }).click();
    await visible(row.getByText('Revoke this key?'), 'revoke confirmation');
    const r = await clickFor(row.getByRole('button', { name: 'Revoke' }), 'DELETE', `/v1/api-keys/${key.id}`);
    assertEq(r.status(), 204, 'DELETE /v1/api-keys status');
    await visible(page.locator(`tr[data-key-id="${key.id}"]`, { hasText: 'Revoked' }), 'revoked badge');
    const api = await fetch(`${base}/v1/customers`, { headers: { Authorization: `Bearer ${key.key}` } });
    assertEq(api.status, 401, 'revoked key status');
  });

  await step('log out returns to the login page and ends the session', async () => {
    await logout();
    await visible(page.getByText('You have been signed out.'), 'signed-out notice');
    const st = await page.evaluate(async () => (await fetch('/v1/me', { credentials: 'same-origin' })).status);
    assertEq(st, 401, 'GET /v1/me after logout');
    await shot('logged-out');
  });

  await step('a viewer sees a read-only console', async () => {
    const r = await login(VIEWER.email, VIEWER.password);
    assertEq(r.status(), 201, 'viewer login status');
    await visible(page.getByRole('heading', { name: 'Overview' }), 'viewer overview');
    assertEq(await text(page.locator('[data-testid="role"]')), 'Viewer', 'viewer role badge');
    assertEq(await nav('Settings').count(), 0, 'no Settings for a viewer');
    await nav('Customers').click();
    await visible(page.locator(`tr[data-external-id="${ACME}"]`), 'viewer sees customers');
    assertEq(await page.getByRole('button', { name: 'New customer' }).count(), 0, 'no New customer button');
    await shot('viewer-customers');
    await page.locator(`tr[data-external-id="${ACME}"]`).click();
    await visible(page.getByRole('heading', { name: 'Details' }), 'viewer customer details');
    assertEq(await page.getByRole('form', { name: 'Edit customer' }).count(), 0, 'no edit form for a viewer');
    await nav('Plans').click();
    await visible(page.locator('section.plan-card[data-code="growth"]'), 'viewer sees plans');
    assertEq(await page.getByRole('button', { name: 'New plan' }).count(), 0, 'no New plan button');
    await nav('Usage').click();
    await visible(page.locator('[data-testid="usage-total-api_calls"][data-value="25.25"]'), 'viewer sees the usage totals');
    await visible(page.locator('#usage-events tr[data-event-id]').first(), 'viewer sees raw events');
    await visible(page.locator('#usage-imports tr[data-import-id]').first(), 'viewer sees recent imports');
    assertEq(await page.getByRole('form', { name: 'Import CSV' }).count(), 0, 'no import form for a viewer');
    assertEq(await page.locator('input[type="file"]').count(), 0, 'no file input for a viewer');
    await shot('viewer-usage');
    await nav('Invoices').click();
    await visible(page.locator('tr[data-status="draft"]', { hasText: GLOBEX }), 'viewer sees invoices');
    assertEq(await page.getByRole('button', { name: 'Generate invoice' }).count(), 0, 'no Generate for a viewer');
    assertEq(await page.getByRole('button', { name: 'Run billing for a month' }).count(), 0, 'no billing run for a viewer');
    await page.locator('tr[data-status="draft"]', { hasText: GLOBEX }).click();
    await visible(page.getByRole('heading', { name: 'Draft invoice' }), 'viewer opens a draft');
    await visible(page.locator('[data-testid="no-actions"]', { hasText: 'read-only' }), 'read-only note');
    assertEq(await page.locator('#invoice-actions button').count(), 0, 'no lifecycle buttons for a viewer');
    assertEq(await page.getByRole('form', { name: 'Open a dispute' }).count(), 0, 'viewers do not open disputes');
    await visible(page.locator('#invoice-lines tr.inv-line').first(), 'viewer sees the lines');
    await shot('viewer-invoice');
    // every role requests reports (POST /v1/reports is open to viewers)
    const [vdl, vr] = await Promise.all([
      page.waitForEvent('download', { timeout: 15_000 }),
      clickFor(page.getByRole('button', { name: 'Preview PDF' }), 'POST', '/v1/reports'),
    ]);
    assert([200, 202].includes(vr.status()), `a viewer's POST /v1/reports status ${vr.status()}`);
    assert(isPdf(await downloaded(vdl)), 'the viewer\'s preview is a PDF');
    await nav('Reports').click();
    await visible(page.locator('#reports tr[data-kind="usage"][data-status="succeeded"] a[download]'), 'viewer sees reports and their downloads');
    await visible(page.getByRole('form', { name: 'Request a usage report' }), 'viewers may request reports');
    await logout();
  });

  await step('a wrong password shows a clear error (401)', async () => {
    const r = await login(OWNER.email, 'definitely-wrong');
    assertEq(r.status(), 401, 'wrong password status');
    await visible(page.getByRole('alert').filter({ hasText: 'Email or password is incorrect.' }), 'wrong-password message');
    await visible(page.getByRole('heading', { name: 'Sign in' }), 'still on the login page');
    await shot('wrong-password');
  });

  await step('too many failures: 429 with the Retry-After wait on screen', async () => {
    let r;
    for (let i = 1; i < LOGIN_MAX_FAILURES; i++) {
      r = await clickFor(page.getByRole('button', { name: 'Sign in' }), 'POST', '/v1/sessions');
      assertEq(r.status(), 401, `failure ${i + 1} status`);
    }
    r = await clickFor(page.getByRole('button', { name: 'Sign in' }), 'POST', '/v1/sessions');
    assertEq(r.status(), 429, 'rate-limited status');
    const ra = r.headers()['retry-after'];
    assert(/^\d+$/.test(ra || ''), `Retry-After header: ${ra}`);
    await visible(page.getByRole('alert').filter({ hasText: `Too many failed sign-in attempts. Try again in ${ra} second` }), `429 message with ${ra} seconds`);
    await shot('rate-limited');
  });

  await step('a platform admin picks the organization and sees its customers', async () => {
    const res = await runBin(['create-admin', '--email', ADMIN.email, '--password-stdin'], `${ADMIN.password}\n`, env);
    assertEq(res.code, 0, `create-admin exit (${res.out.trim()})`);
    await page.getByLabel('Password').fill('');
    const r = await login(ADMIN.email, ADMIN.password);
    assertEq(r.status(), 201, 'admin login status');
    await visible(page.getByRole('heading', { name: 'Choose an organization' }), 'org chooser');
    assertEq(await text(page.locator('[data-testid="role"]')), 'Platform admin', 'admin role badge');
    await page.getByRole('searchbox', { name: 'Filter organizations' }).fill(org.slug);
    await visible(page.locator(`tr[data-slug="${org.slug}"]`), 'the new organization in the chooser');
    assertEq(await page.locator('tr[data-slug]:visible').count(), 1, 'organizations matching the filter');
    await shot('admin-choose-org');
    const picker = page.getByLabel('Organization', { exact: true });
    await picker.selectOption(org.slug);
    await visible(page.getByRole('heading', { name: 'Overview' }), 'overview of the chosen org');
    await visible(page.getByText(`${org.name} · signed in as`), 'chosen org named on the overview');
    const [resp] = await Promise.all([
      page.waitForResponse((x) => x.url().includes('/v1/customers?')),
      nav('Customers').click(),
    ]);
    assertEq(new URL(resp.url()).searchParams.get('org'), org.slug, 'requests carry ?org=<slug>');
    await visible(page.locator(`tr[data-external-id="${ACME}"]`), 'admin sees the org\'s customer');
    await visible(page.getByRole('button', { name: 'New customer' }), 'admin may create customers');
    await shot('admin-customers');
  });

  await step('narrow screen: layout stays within the viewport', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await visible(page.locator(`tr[data-external-id="${ACME}"]`), 'customer row on mobile');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 1, `page overflows horizontally by ${overflow}px`);
    await shot('mobile-customers', false);
    await nav('Plans').click();
    await visible(page.locator('section.plan-card[data-code="growth"]'), 'plan card on mobile');
    const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow2 <= 1, `plans page overflows horizontally by ${overflow2}px`);
    await shot('mobile-plans', false);
    await nav('Usage').click();
    await visible(page.locator('svg.chart'), 'usage chart on mobile');
    await visible(page.locator('[data-testid="usage-total-api_calls"][data-value="25.25"]'), 'usage total on mobile (admin, ?org=)');
    const overflow3 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow3 <= 1, `usage page overflows horizontally by ${overflow3}px`);
    await shot('mobile-usage', false);
    await nav('Invoices').click();
    await visible(page.locator('tr[data-invoice-id]').first(), 'invoice list on mobile');
    const overflow4 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow4 <= 1, `invoice list overflows horizontally by ${overflow4}px`);
    await page.getByRole('tab', { name: 'Past' }).click();
    await page.locator(`tr[data-invoice-id="${invId}"]`).click();
    await visible(page.locator('#invoice-lines tr.inv-line').first(), 'invoice lines on mobile');
    await visible(page.locator('article.dispute[data-status="resolved"]'), 'admin sees the dispute thread');
    const overflow5 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow5 <= 1, `invoice page overflows horizontally by ${overflow5}px`);
    await shot('mobile-invoice', true);
    await visible(page.getByRole('link', { name: 'Download PDF' }), 'Download PDF on mobile (admin, ?org=)');
    assertEq(new URL(await page.getByRole('link', { name: 'Download PDF' }).getAttribute('href'), base).searchParams.get('org'), org.slug, 'the admin\'s link names the organization');
    await nav('Reports').click();
    await visible(page.locator('#reports tr[data-report-id]').first(), 'report list on mobile');
    const overflow6 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const wide = overflow6 <= 1 ? [] : await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => {
        if (e.getBoundingClientRect().right <= window.innerWidth + 1) return false;
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) if (getComputedStyle(a).overflowX !== 'visible') return false;
        return true;
      })
      .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.getAttribute('class')} (${Math.round(e.getBoundingClientRect().right)})`));
    assert(overflow6 <= 1, `reports page overflows horizontally by ${overflow6}px: ${wide.join(', ')}`);
    await shot('mobile-reports', true);
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await step('no CSP violations or script errors in the console', async () => {
    assert(consoleProblems.length === 0, `console errors:\n  ${consoleProblems.join('\n  ')}`);
  });
}

// ---------------------------------------------------------------------------

const deadline = setTimeout(async () => {
  console.log(`FAIL whole run exceeded ${DEADLINE_MS / 1000} s`);
  failed++;
  await shot('FAILED-deadline');
  await cleanup();
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''} (deadline)`);
  process.exit(1);
}, DEADLINE_MS);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => { await cleanup(); process.exit(130); });
}

let code = 0;
try {
  await main();
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e instanceof Fail ? e.message : (e.stack || e)}`);
}
await cleanup();
clearTimeout(deadline);
if (failed) {
  code = 1;
  const tail = serverLog.trim().split('\n').filter((l) => !l.includes('"path":"/readyz"')).slice(-15).join('\n');
  if (tail) console.log(`--- billing-api log (last lines) ---\n${tail}`);
}
if (shots.length) console.log(`screenshots:\n  ${shots.join('\n  ')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''} in ${elapsed()}`);
process.exit(code);
