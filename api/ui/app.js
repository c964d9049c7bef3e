// Meterline web console — vanilla ES module, no build step, no framework.
//
// Served from the billing-api binary under a strict CSP (script-src 'self',
// style-src 'self'): no inline scripts or styles, so every element is built
// with DOM calls and styled by class from /ui/app.css.  Text is always set as
// text (never innerHTML), so API data cannot inject markup.
//
// Auth is the HttpOnly `meterline_session` cookie set by POST /v1/sessions
// (and /v1/signup); fetch sends it with credentials: 'same-origin'.  Money and
// quantities are decimal strings from the API and are shown exactly as given;
// the only arithmetic on them (usage totals) is exact, on BigInt-scaled
// integers — floats only ever size the bars of a chart.

'use strict';

const $app = document.getElementById('app');
const $toasts = document.getElementById('toasts');

const state = {
  me: null,          // {user, organization} from GET /v1/me
  org: null,         // platform admins: the chosen organization's slug
  orgs: [],          // platform admins: every organization
  cache: {},         // per-organization lists used by selects: metrics, plans
  usage: null,       // the usage page's filters (kept while navigating)
  invoices: null,    // the invoice list's view and filters (kept while navigating)
  reports: null,     // the report list's filters (kept while navigating)
};

const ORG_KEY = 'meterline.admin.org';
const ROLE_LABEL = {
  admin: 'Platform admin', owner: 'Owner', finance: 'Finance', approver: 'Approver', viewer: 'Viewer',
};

// ---------------------------------------------------------------------------
// DOM helpers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' && (tag === 'input' || tag === 'textarea')) { el.value = v; el.setAttribute('value', v); }
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else if (k instanceof Node) el.appendChild(k);
    else el.appendChild(document.createTextNode(String(k)));
  }
  return el;
}

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

const SVGNS = 'http://www.w3.org/2000/svg';
const ICONS = {
  overview: ['M3 3h7v9H3z', 'M14 3h7v5h-7z', 'M14 12h7v9h-7z', 'M3 16h7v5H3z'],
  customers: ['M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2', 'M5 7a4 4 0 1 0 8 0a4 4 0 1 0-8 0',
    'M22 21v-2a4 4 0 0 0-3-3.87', 'M16 3.13a4 4 0 0 1 0 7.75'],
  metrics: ['M22 12h-4l-3 9L9 3l-3 9H2'],
  plans: ['M12 2 2 7l10 5 10-5-10-5z', 'M2 17l10 5 10-5', 'M2 12l10 5 10-5'],
  usage: ['M3 3v18h18', 'M7 16v-5', 'M12 16V8', 'M17 16V7'],
  invoices: ['M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z', 'M14 2v6h6', 'M16 13H8', 'M16 17H8'],
  reports: ['M21.21 15.89A10 10 0 1 1 8 2.83', 'M22 12A10 10 0 0 0 12 2v10z'],
  settings: ['M4 21v-7', 'M4 10V3', 'M12 21v-9', 'M12 8V3', 'M20 21v-5', 'M20 12V3', 'M1 14h6', 'M9 8h6', 'M17 16h6'],
  search: ['M3 11a8 8 0 1 0 16 0a8 8 0 1 0-16 0', 'M21 21l-4.35-4.35'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  download: ['M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4', 'M7 10l5 5 5-5', 'M12 15V3'],
  key: ['M21 2l-2 2', 'M15.5 7.5l3 3L22 7l-3-3', 'M11.39 11.61a5.5 5.5 0 1 1-7.78 7.78 5.5 5.5 0 0 1 7.78-7.78z', 'M11.39 11.61L19 4'],
};

function icon(name, cls = 'ico') {
  const svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', cls);
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVGNS, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function toast(msg, kind = '') {
  const t = h('div', { class: `toast ${kind}` }, msg);
  $toasts.appendChild(t);
  while ($toasts.children.length > 3) $toasts.firstChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 7000 : 3500);
}

function fmtDate(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

function fmtWait(sec) {
  const s = Number.parseInt(sec, 10);
  if (!Number.isFinite(s) || s <= 0) return 'a moment';
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  return `${Math.ceil(s / 60)} minutes (${s} s)`;
}

// A decimal string from the API, shown verbatim (never parsed to float).
const money = (amount, currency) => (amount == null ? '—' : `${amount} ${currency || ''}`.trim());
const dash = (v) => (v == null || v === '' ? '—' : v);

// ---------------------------------------------------------------------------
// API client

class ApiError extends Error {
  constructor(status, body, headers, fallback) {
    const e = body && body.error ? body.error : null;
    super(e && e.message ? e.message : fallback || `request failed (${status})`);
    this.status = status;
    this.code = e ? e.code : null;
    this.details = e && Array.isArray(e.details) ? e.details : [];
    this.retryAfter = headers ? headers.get('Retry-After') : null;
  }
}

const isAdmin = () => !!state.me && state.me.user && state.me.user.role === 'admin';
const role = () => (state.me && state.me.user ? state.me.user.role : null);
const canWriteCatalog = () => ['admin', 'owner', 'finance'].includes(role());
const isOwner = () => ['admin', 'owner'].includes(role());
const needsOrg = () => isAdmin() && !state.org;

function defaultCurrency() {
  const o = currentOrg();
  return o && o.currency ? o.currency : 'default';
}

function currentOrg() {
  if (!state.me) return null;
  if (isAdmin()) return state.orgs.find((o) => o.slug === state.org) || null;
  return state.me.organization;
}

async function api(method, path, body, opts = {}) {
  let url = path;
  const orgScoped = !/^\/v1\/(me|sessions|signup|admin)\b/.test(path);
  if (isAdmin() && state.org && orgScoped && opts.org !== false) {
    url += `${url.includes('?') ? '&' : '?'}org=${encodeURIComponent(state.org)}`;
  }
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (opts.signal) init.signal = opts.signal;
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    const err = new ApiError(0, null, null, 'Cannot reach Meterline. Check your connection and try again.');
    err.aborted = !!(opts.signal && opts.signal.aborted);
    throw err;
  }
  let data = null;
  if (res.status !== 204) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
  }
  if (opts.meta) opts.meta.status = res.status;
  if (!res.ok) {
    const err = new ApiError(res.status, data, res.headers);
    if (res.status === 401 && opts.auth !== false) sessionLost();
    throw err;
  }
  return data;
}

// Every page of a list (bounded), for selects and small catalogs.
async function listAll(path, max = 5000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

async function cached(name, path) {
  if (!state.cache[name]) state.cache[name] = listAll(path).catch((e) => { delete state.cache[name]; throw e; });
  return state.cache[name];
}
const getMetrics = () => cached('metrics', '/v1/metrics');
const getPlans = () => cached('plans', '/v1/plans');

function errorText(err) {
  switch (err.status) {
    case 0: return err.message;
    case 429: return `Too many attempts. Try again in ${fmtWait(err.retryAfter)}.`;
    case 503: return `Meterline is temporarily unavailable. Try again in ${fmtWait(err.retryAfter || 5)}.`;
    case 403: return `You don't have permission to do that. (${err.message})`;
    default: return err.message;
  }
}

// ---------------------------------------------------------------------------
// forms: fields with their own error slot; server 422/409 details land there

function field({ label, name, control, hint, required, cls }) {
  const id = control.id || nextId('f');
  control.id = id;
  if (name) { control.name = name; control.dataset.field = name; }
  const err = h('div', { class: 'field-error', dataset: { errorFor: name || '' }, hidden: true, 'aria-live': 'polite' });
  return h('div', { class: `field ${cls || ''}` },
    label ? h('div', { class: 'field-label' }, h('label', { for: id }, label),
      required ? h('span', { class: 'req', 'aria-hidden': 'true', title: 'required' }, '*') : null) : null,
    control,
    hint ? h('div', { class: 'hint' }, hint) : null,
    err);
}

const input = (attrs = {}) => h('input', { class: `input ${attrs.mono ? 'mono' : ''}`, type: 'text', ...attrs, mono: null });

function select(options, value, attrs = {}) {
  return h('select', { class: 'input', ...attrs },
    options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

function checkbox({ name, label, hint, checked }) {
  const box = h('input', { type: 'checkbox', name, checked: !!checked, dataset: { field: name } });
  return h('div', { class: 'field' },
    h('label', { class: 'check' }, box, h('span', null, h('span', { class: 'check-title' }, label), hint ? h('span', { class: 'hint' }, hint) : null)),
    h('div', { class: 'field-error', dataset: { errorFor: name }, hidden: true }));
}

function formAlert() { return h('div', { class: 'alert', role: 'alert', hidden: true, dataset: { formError: '' } }); }

function clearErrors(form) {
  form.querySelectorAll('[data-error-for]').forEach((e) => { e.hidden = true; e.textContent = ''; });
  form.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
  form.querySelectorAll('[data-form-error]').forEach((e) => { e.hidden = true; clear(e); });
}

function showErrors(form, err, messageFor) {
  clearErrors(form);
  const unplaced = [];
  for (const d of err.details || []) {
    const slot = d.field ? form.querySelector(`[data-error-for="${CSS.escape(d.field)}"]`) : null;
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent}; ${d.message}` : d.message;
      slot.hidden = false;
      const ctl = form.querySelector(`[data-field="${CSS.escape(d.field)}"]`);
      if (ctl) { ctl.classList.add('invalid'); ctl.setAttribute('aria-invalid', 'true'); }
    } else {
      unplaced.push(d);
    }
  }
  const box = form.querySelector('[data-form-error]');
  const placed = (err.details || []).length - unplaced.length;
  const msg = messageFor ? messageFor(err) : null;
  if (box && (msg || unplaced.length || placed === 0)) {
    clear(box);
    box.appendChild(document.createTextNode(msg || (placed ? 'Some fields need attention:' : errorText(err))));
    if (unplaced.length) {
      box.appendChild(h('ul', null, unplaced.map((d) => h('li', null, d.field ? `${d.field}: ${d.message}` : d.message))));
    }
    box.hidden = false;
  }
  const first = form.querySelector('.invalid');
  if (first) first.focus();
}

// Wraps a submit handler: disables the button, maps errors onto the form.
function onSubmit(form, button, busyLabel, fn, messageFor) {
  form.noValidate = true;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (button.disabled) return;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = busyLabel;
    clearErrors(form);
    try {
      await fn();
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status !== 401 || !state.me || form.dataset.auth) showErrors(form, err, messageFor);
      } else {
        console.error(err);
        showErrors(form, new ApiError(0, null, null, 'Something went wrong in the page. Reload and try again.'));
      }
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
}

const val = (form, name) => {
  const el = form.elements.namedItem(name);
  return el ? el.value.trim() : '';
};

// ---------------------------------------------------------------------------
// auth screens

function renderAuth(mode = 'login', notice = null) {
  if (pageCtl) pageCtl.abort();
  state.me = null;
  clear($toasts);
  state.cache = {};
  state.usage = null;
  state.invoices = null;
  state.reports = null;
  const signup = mode === 'signup';
  const btn = h('button', { class: 'btn primary block', type: 'submit' }, signup ? 'Create account' : 'Sign in');
  const pw = input({ type: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true, minlength: signup ? 8 : null });
  const email = input({ type: 'email', autocomplete: 'email', required: true, placeholder: 'you@company.com' });
  const form = h('form', { dataset: { auth: '1' }, 'aria-label': signup ? 'Sign up' : 'Sign in' },
    formAlert(),
    signup ? field({ label: 'Organization name', name: 'org_name', required: true, control: input({ autocomplete: 'organization', placeholder: 'Acme Logistics' }) }) : null,
    signup ? field({ label: 'Your name', name: 'name', required: true, control: input({ autocomplete: 'name' }) }) : null,
    field({ label: 'Email', name: 'email', required: true, control: email }),
    field({ label: 'Password', name: 'password', required: true, control: pw, hint: signup ? 'At least 8 characters.' : null }),
    btn);

  onSubmit(form, btn, signup ? 'Creating account…' : 'Signing in…', async () => {
    const creds = { email: val(form, 'email'), password: form.elements.namedItem('password').value };
    if (signup) {
      await api('POST', '/v1/signup', { org_name: val(form, 'org_name'), name: val(form, 'name'), ...creds }, { auth: false });
    } else {
      await api('POST', '/v1/sessions', creds, { auth: false });
    }
    if (!location.hash || location.hash === '#/login' || location.hash === '#/signup') history.replaceState(null, '', '#/');
    await boot();
  }, (err) => {
    if (err.status === 401) return 'Email or password is incorrect.';
    if (err.status === 429) return `Too many failed sign-in attempts. Try again in ${fmtWait(err.retryAfter)}.`;
    if (err.status === 409 && !err.details.length) return 'That email is already registered. Sign in instead.';
    return null;
  });

  const toggle = h('button', { class: 'linklike', type: 'button', onclick: () => renderAuth(signup ? 'login' : 'signup') },
    signup ? 'Sign in' : 'Create an account');

  clear($app).appendChild(h('main', { class: 'auth' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-brand' }, h('img', { src: '/ui/logo.svg', alt: '', width: 32, height: 32 }), h('span', { class: 'name' }, 'Meterline')),
      h('h1', null, signup ? 'Create your account' : 'Sign in'),
      h('p', { class: 'sub' }, signup
        ? 'Set up your organization and start billing for usage.'
        : 'Welcome back. Sign in to your billing console.'),
      notice ? h('div', { class: 'alert info', role: 'status' }, notice) : null,
      form,
      h('div', { class: 'auth-switch' }, signup ? 'Already have an account? ' : 'New to Meterline? ', toggle)),
    h('p', { class: 'auth-foot' }, 'Usage-based billing · Meterline')));
  (signup ? form.elements.namedItem('org_name') : email).focus();
}

let lostOnce = false;
function sessionLost() {
  if (!state.me || lostOnce) return;
  lostOnce = true;
  setTimeout(() => { lostOnce = false; }, 1000);
  renderAuth('login', 'Your session has ended. Sign in again to continue.');
}

async function logout() {
  try { await api('DELETE', '/v1/sessions/current', undefined, { auth: false }); } catch { /* gone already */ }
  state.org = null;
  history.replaceState(null, '', '#/');
  renderAuth('login', 'You have been signed out.');
}

// ---------------------------------------------------------------------------
// shell: top bar, left nav, content

const NAV = [
  { section: 'Billing' },
  { path: '/', label: 'Overview', icon: 'overview' },
  { path: '/customers', label: 'Customers', icon: 'customers' },
  { path: '/metrics', label: 'Metrics', icon: 'metrics' },
  { path: '/plans', label: 'Plans', icon: 'plans' },
  { path: '/usage', label: 'Usage', icon: 'usage' },
  { path: '/invoices', label: 'Invoices', icon: 'invoices' },
  { path: '/reports', label: 'Reports', icon: 'reports' },
];

let $main = null;
let $nav = null;

function initials(name) {
  return (name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('');
}

function orgPicker() {
  const sel = select([['', '— Select —'], ...state.orgs.map((o) => [o.slug, `${o.name} (${o.slug})`])],
    state.org || '', { id: 'org-picker', 'aria-label': 'Organization' });
  sel.addEventListener('change', () => chooseOrg(sel.value || null));
  return h('div', { class: 'org-picker' }, h('label', { for: 'org-picker' }, 'Organization'), sel);
}

function chooseOrg(slug) {
  state.org = slug;
  state.cache = {};
  state.usage = null;
  state.invoices = null;
  state.reports = null;
  if (slug) localStorage.setItem(ORG_KEY, slug); else localStorage.removeItem(ORG_KEY);
  renderShell();
  route();
}

function renderShell() {
  const { user } = state.me;
  const org = currentOrg();
  $main = h('main', { class: 'main', id: 'main' });
  $nav = h('div', { class: 'sidenav-inner' });
  for (const item of NAV) {
    if (item.section) { $nav.appendChild(h('div', { class: 'nav-section' }, item.section)); continue; }
    $nav.appendChild(h('a', { href: `#${item.path}`, dataset: { path: item.path }, class: item.soon ? 'nav-soon-link' : null,
      title: item.soon ? `${item.label} — coming soon` : null },
    icon(item.icon), item.label, item.soon ? h('span', { class: 'soon-pill' }, 'Soon') : null));
  }
  if (isOwner()) {
    $nav.appendChild(h('div', { class: 'nav-bottom' },
      h('a', { href: '#/settings', dataset: { path: '/settings' } }, icon('settings'), 'Settings')));
  }

  const top = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, h('img', { src: '/ui/logo.svg', alt: '', width: 28, height: 28 }), 'Meterline'),
    h('div', { class: 'spacer' }),
    isAdmin()
      ? orgPicker()
      : h('div', { class: 'org-chip', title: org ? org.slug : '' },
        h('span', { class: 'dot', 'aria-hidden': 'true' }, initials(org && org.name)),
        h('span', { class: 'org-name', dataset: { testid: 'org-name' } }, org ? org.name : '')),
    h('div', { class: 'divider' }),
    h('div', { class: 'user-chip' },
      h('span', { class: 'user-name' }, user.name),
      h('span', { class: 'user-meta' },
        h('span', { class: 'user-email' }, user.email),
        h('span', { class: `badge role ${user.role === 'admin' ? 'amber' : 'blue'}`, dataset: { testid: 'role' } }, ROLE_LABEL[user.role] || user.role))),
    h('button', { class: 'btn ghost sm', type: 'button', onclick: logout, title: 'Log out' }, icon('logout', 'ico'), 'Log out'));

  clear($app).appendChild(h('div', { class: 'shell' }, top, h('nav', { class: 'sidenav nav', 'aria-label': 'Main' }, $nav), $main));
}

// ---------------------------------------------------------------------------
// router

const ROUTES = [
  [/^\/$/, pageOverview],
  [/^\/customers$/, pageCustomers],
  [/^\/customers\/(.+)$/, pageCustomer],
  [/^\/metrics$/, pageMetrics],
  [/^\/plans$/, pagePlans],
  [/^\/settings$/, pageSettings],
  [/^\/usage$/, pageUsage],
  [/^\/invoices$/, pageInvoices],
  [/^\/invoices\/(.+)$/, pageInvoice],
  [/^\/reports$/, pageReports],
];

// Aborted when the next page is drawn: pass pageSignal() to api() for
// requests that may outlive their page (long polls), and stop loops on it.
let pageCtl = null;
const pageSignal = () => (pageCtl ? pageCtl.signal : undefined);

function route() {
  if (!state.me || !$main) return;
  const path = (location.hash || '#/').slice(1) || '/';
  let handler = null;
  let params = [];
  for (const [re, fn] of ROUTES) {
    const m = path.match(re);
    if (m) { handler = fn; params = m.slice(1).map(decodeURIComponent); break; }
  }
  if (!handler || (handler === pageSettings && !isOwner())) { location.hash = '#/'; return; }
  const top = `/${path.split('/')[1] || ''}`;
  $nav.querySelectorAll('a[data-path]').forEach((a) => {
    const on = a.dataset.path === top;
    a.classList.toggle('active', on);
    if (on) {
      a.setAttribute('aria-current', 'page');
      if (a.parentNode.scrollWidth > a.parentNode.clientWidth) a.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    } else {
      a.removeAttribute('aria-current');
    }
  });
  // long polls and retry loops of the previous page end with it
  if (pageCtl) pageCtl.abort();
  pageCtl = new AbortController();
  const page = h('div', { class: 'page' });
  clear($main).appendChild(page);
  window.scrollTo(0, 0);
  if (needsOrg() && handler !== pageOverview) {
    pageChooseOrg(page);
    return;
  }
  handler(page, ...params).catch((err) => {
    if (err instanceof ApiError && err.status === 401) return;
    console.error(err);
    page.appendChild(h('div', { class: 'alert', role: 'alert' }, err instanceof ApiError ? errorText(err) : 'Something went wrong.'));
  });
}

function pageHead(title, sub, actions, crumb) {
  return h('div', { class: 'page-head' },
    h('div', { class: 'titles' }, crumb || null, h('h1', null, title), sub ? h('p', { class: 'muted' }, sub) : null),
    actions && actions.filter(Boolean).length ? h('div', { class: 'actions' }, actions) : null);
}

const loading = () => h('div', { class: 'loading' }, 'Loading…');

function empty(title, text, action) {
  return h('div', { class: 'empty' }, h('div', { class: 'empty-title' }, title), text ? h('p', null, text) : null, action || null);
}

// ---------------------------------------------------------------------------
// overview

async function pageOverview(page) {
  const { user } = state.me;
  if (needsOrg()) { pageChooseOrg(page); return; }
  const org = currentOrg();
  page.appendChild(pageHead('Overview', `${org.name} · signed in as ${user.name}`));
  const stats = h('div', { class: 'stats' });
  const steps = h('ol', { class: 'steps' });
  page.append(stats, h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Getting started'),
      h('p', { class: 'sub' }, 'Four steps from zero to your first usage-based invoice.'))), steps));

  const count = async (path) => {
    const p = await api('GET', `${path}?limit=1000`);
    return p.next_cursor ? `${p.data.length}+` : String(p.data.length);
  };
  const [nc, nm, np, nk] = await Promise.all([
    count('/v1/customers'), count('/v1/metrics'), count('/v1/plans'),
    isOwner() ? count('/v1/api-keys').catch(() => null) : Promise.resolve(null),
  ]);
  const stat = (label, value, href, link) => h('a', { class: 'card stat', href },
    h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value', dataset: { testid: `count-${label.toLowerCase()}` } }, value),
    h('span', { class: 'stat-link' }, link));
  stats.append(stat('Customers', nc, '#/customers', 'View customers →'),
    stat('Metrics', nm, '#/metrics', 'View metrics →'),
    stat('Plans', np, '#/plans', 'View plans →'));

  const step = (n, done, title, desc, href, label) => h('li', { class: done ? 'done' : null },
    h('span', { class: 'step-mark', 'aria-label': done ? 'done' : `step ${n}` }, done ? '✓' : String(n)),
    h('div', { class: 'step-text' }, h('div', { class: 'step-title' }, title), h('div', { class: 'step-desc' }, desc)),
    href ? h('a', { class: 'btn sm', href }, label) : null);
  steps.append(
    step(1, nm !== '0', 'Define a metric', 'What you measure: API calls, minutes, gigabyte-hours…', '#/metrics', 'Metrics'),
    step(2, np !== '0', 'Create a plan', 'A base fee plus a charge per metric: per unit, package or tiers.', '#/plans', 'Plans'),
    step(3, nc !== '0', 'Add a customer', 'Give each customer your own external ID and put them on a plan.', '#/customers', 'Customers'),
    isOwner()
      ? step(4, nk != null && nk !== '0', 'Send usage', h('span', null, 'Create an API key, then ', h('code', null, 'POST /v1/usage'), ' from your servers.'), '#/settings', 'API keys')
      : step(4, false, 'Send usage', h('span', null, 'Your servers send events to ', h('code', null, 'POST /v1/usage'), ' with an API key.'), null));
}

async function pageChooseOrg(page) {
  page.appendChild(pageHead('Choose an organization', 'As a platform admin you can work in any organization. Pick one here or in the top bar.'));
  const card = h('section', { class: 'card' });
  page.appendChild(card);
  if (!state.orgs.length) { card.appendChild(empty('No organizations yet', 'Organizations appear here when someone signs up.')); return; }
  const filter = input({ type: 'search', placeholder: 'Filter by name or slug', 'aria-label': 'Filter organizations', autocomplete: 'off' });
  const count = h('span', { class: 'count' });
  const none = empty('No organization matches', 'Try another part of the name or slug.');
  const rows = state.orgs.map((o) => {
    const tr = h('tr', { class: 'clickable', tabindex: 0, dataset: { slug: o.slug }, onclick: () => chooseOrg(o.slug),
      onkeydown: (e) => { if (e.key === 'Enter') chooseOrg(o.slug); } },
    h('td', null, h('div', { class: 'primary-cell' }, o.name), h('div', { class: 'sub-cell' }, o.slug)),
    h('td', null, o.currency), h('td', { class: 'hide-sm' }, fmtDate(o.created_at)));
    tr.matchText = `${o.name} ${o.slug}`.toLowerCase();
    return tr;
  });
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
    h('thead', null, h('tr', null, h('th', null, 'Organization'), h('th', null, 'Currency'), h('th', { class: 'hide-sm' }, 'Created'))),
    h('tbody', null, rows)));
  const apply = () => {
    const q = filter.value.trim().toLowerCase();
    let n = 0;
    for (const tr of rows) { tr.hidden = !!q && !tr.matchText.includes(q); if (!tr.hidden) n++; }
    count.textContent = `${n} of ${rows.length} organization${rows.length === 1 ? '' : 's'}`;
    table.hidden = n === 0;
    none.hidden = n !== 0;
  };
  filter.addEventListener('input', apply);
  card.append(h('div', { class: 'toolbar' }, h('div', { class: 'search' }, icon('search'), filter), count), table, none);
  apply();
  filter.focus();
}

// ---------------------------------------------------------------------------
// customers

function addressText(a) {
  if (!a) return '—';
  const parts = [a.line1, a.line2, a.city, a.region, a.postal_code, a.country].filter((x) => x);
  return parts.length ? parts.join(', ') : '—';
}

async function planOptions() {
  const plans = await getPlans();
  return [['', '— No plan —'], ...plans.map((p) => [p.code, `${p.name} (${p.code}, ${p.currency})`])];
}

async function customerForm(onDone, onCancel) {
  const org = currentOrg();
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Create customer');
  const form = h('form', { 'aria-label': 'New customer' },
    h('div', { class: 'grid cols-2' },
      field({ label: 'External ID', name: 'external_id', required: true, control: input({ mono: true, placeholder: 'site-00042', autocomplete: 'off' }),
        hint: 'Your own ID for this customer; usage events refer to it. It cannot be changed later.' }),
      field({ label: 'Name', name: 'name', required: true, control: input({ placeholder: 'Acme Robotics' }) }),
      field({ label: 'Billing email', name: 'email', control: input({ type: 'email', placeholder: 'billing@acme.example' }) }),
      field({ label: 'Currency', name: 'currency', control: input({ maxlength: 3, placeholder: org ? org.currency : 'USD', autocomplete: 'off' }),
        hint: `ISO 4217 code. Leave blank for the organization's default${org ? ` (${org.currency})` : ''}.` }),
      field({ label: 'Plan', name: 'plan', control: select(await planOptions(), '') }),
      h('div', { class: 'grid cols-2' },
        field({ label: 'City', name: 'billing_address.city', control: input({ autocomplete: 'address-level2' }) }),
        field({ label: 'Country', name: 'billing_address.country', control: input({ autocomplete: 'country', placeholder: 'US' }) })),
      h('div', { class: 'span-2' }, checkbox({ name: 'require_approval', label: 'Require approval before invoices are issued',
        hint: 'An approver must accept each invoice for this customer.' }))),
    formAlert(),
    h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: onCancel }, 'Cancel'), btn));

  onSubmit(form, btn, 'Creating…', async () => {
    const body = { external_id: val(form, 'external_id'), name: val(form, 'name'), require_approval: form.elements.namedItem('require_approval').checked };
    const email = val(form, 'email');
    const currency = val(form, 'currency').toUpperCase();
    const plan = val(form, 'plan');
    const city = val(form, 'billing_address.city');
    const country = val(form, 'billing_address.country');
    if (email) body.email = email;
    if (currency) body.currency = currency;
    if (plan) body.plan = plan;
    if (city || country) body.billing_address = { ...(city ? { city } : {}), ...(country ? { country } : {}) };
    const c = await api('POST', '/v1/customers', body);
    toast(`Customer “${c.name}” created.`);
    form.reset();
    onDone(c);
  });
  return form;
}

async function pageCustomers(page) {
  const newBtn = canWriteCatalog() ? h('button', { class: 'btn primary', type: 'button' }, h('span', { class: 'plus' }, '+'), 'New customer') : null;
  page.appendChild(pageHead('Customers', 'The accounts you bill. Each is identified by your own external ID.', [newBtn]));
  const formSlot = h('section', { class: 'card form-card', hidden: true });
  page.appendChild(formSlot);

  const q = input({ type: 'search', placeholder: 'Search by name, external ID or email', 'aria-label': 'Search customers', autocomplete: 'off' });
  const countEl = h('span', { class: 'count' });
  const tbody = h('tbody');
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
    h('thead', null, h('tr', null, h('th', null, 'Customer'), h('th', { class: 'hide-sm' }, 'Email'), h('th', null, 'Plan'),
      h('th', null, 'Currency'), h('th', { class: 'hide-sm' }, 'Location'), h('th', { class: 'hide-sm' }, 'Approval'))),
    tbody));
  const status = h('div');
  const more = h('button', { class: 'btn', type: 'button' }, 'Load more');
  const foot = h('div', { class: 'card-foot', hidden: true }, more);
  page.appendChild(h('section', { class: 'card' },
    h('div', { class: 'toolbar' }, h('div', { class: 'search' }, icon('search'), q), countEl), table, status, foot));

  let cursor = null;
  let seq = 0;
  let shown = 0;

  const row = (c) => h('tr', { class: 'clickable', tabindex: 0, dataset: { externalId: c.external_id },
    onclick: () => { location.hash = `#/customers/${encodeURIComponent(c.external_id)}`; },
    onkeydown: (e) => { if (e.key === 'Enter') location.hash = `#/customers/${encodeURIComponent(c.external_id)}`; } },
  h('td', null, h('div', { class: 'primary-cell' }, c.name), h('div', { class: 'sub-cell' }, c.external_id)),
  h('td', { class: 'hide-sm' }, dash(c.email)),
  h('td', null, c.plan ? h('span', { class: 'badge blue' }, c.plan) : h('span', { class: 'muted' }, '—')),
  h('td', null, c.currency || h('span', { class: 'muted', title: 'Organization default currency' }, defaultCurrency())),
  h('td', { class: 'hide-sm' }, c.billing_address ? [c.billing_address.city, c.billing_address.country].filter(Boolean).join(', ') || '—' : '—'),
  h('td', { class: 'hide-sm' }, c.require_approval ? h('span', { class: 'badge amber' }, 'Required') : h('span', { class: 'muted' }, '—')));

  async function load(reset) {
    const my = ++seq;
    if (reset) { cursor = null; shown = 0; }
    const term = q.value.trim();
    const qs = new URLSearchParams({ limit: '50' });
    if (term) qs.set('q', term);
    if (cursor && !reset) qs.set('cursor', cursor);
    if (reset) clear(status).appendChild(loading());
    more.disabled = true;
    try {
      const page1 = await api('GET', `/v1/customers?${qs}`);
      if (my !== seq) return;
      if (reset) clear(tbody);
      clear(status);
      page1.data.forEach((c) => tbody.appendChild(row(c)));
      shown += page1.data.length;
      cursor = page1.next_cursor;
      foot.hidden = !cursor;
      table.hidden = shown === 0;
      countEl.textContent = shown === 0 ? '' : `${shown}${cursor ? '+' : ''} customer${shown === 1 && !cursor ? '' : 's'}`;
      if (shown === 0) {
        status.appendChild(term
          ? empty('No customers match', `Nothing found for “${term}”. Try part of a name, ID or email.`)
          : empty('No customers yet', canWriteCatalog() ? 'Create your first customer to start billing usage.' : 'Customers will appear here once they are created.'));
      }
    } catch (err) {
      if (my !== seq) return;
      clear(status).appendChild(h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
    } finally {
      more.disabled = false;
    }
  }

  let timer = null;
  q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => load(true), 250); });
  more.addEventListener('click', () => load(false));

  if (newBtn) {
    newBtn.addEventListener('click', async () => {
      if (!formSlot.hidden) return;
      const close = () => { formSlot.hidden = true; clear(formSlot); newBtn.disabled = false; };
      newBtn.disabled = true;
      clear(formSlot).append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'New customer'),
        h('p', { class: 'sub' }, 'Fields marked * are required.'))), h('div', { class: 'card-body' }, loading()));
      formSlot.hidden = false;
      try {
        const form = await customerForm(async (c) => {
          close();
          q.value = '';
          await load(true);
          const tr = tbody.querySelector(`tr[data-external-id="${CSS.escape(c.external_id)}"]`);
          if (tr) { tr.classList.add('flash'); setTimeout(() => tr.classList.remove('flash'), 2500); }
        }, close);
        clear(formSlot.lastChild).appendChild(form);
        form.elements.namedItem('external_id').focus();
      } catch (err) {
        clear(formSlot.lastChild).appendChild(h('div', { class: 'alert', role: 'alert' }, errorText(err)));
        newBtn.disabled = false;
      }
    });
  }
  await load(true);
}

async function pageCustomer(page, externalId) {
  const crumb = h('div', { class: 'crumb' }, h('a', { href: '#/customers' }, 'Customers'), ' / ', externalId);
  page.appendChild(loading());
  let c;
  try {
    c = await api('GET', `/v1/customers/${encodeURIComponent(externalId)}`);
  } catch (err) {
    clear(page).append(pageHead('Customer not found', null, null, crumb),
      h('div', { class: 'alert', role: 'alert' }, err.status === 404 ? `There is no customer with external ID “${externalId}”.` : errorText(err)));
    return;
  }
  const plans = canWriteCatalog() ? await planOptions() : null;

  const head = h('div');
  const details = h('section', { class: 'card' });
  const drawHead = () => clear(head).appendChild(pageHead(c.name, null, null, crumb));
  const drawDetails = () => {
    clear(details).append(h('div', { class: 'card-head' }, h('h2', null, 'Details'),
      c.require_approval ? h('span', { class: 'badge amber' }, 'Approval required') : null),
    h('div', { class: 'card-body' }, h('dl', { class: 'kv' },
      h('dt', null, 'External ID'), h('dd', null, h('code', null, c.external_id)),
      h('dt', null, 'Name'), h('dd', { dataset: { testid: 'customer-name' } }, c.name),
      h('dt', null, 'Billing email'), h('dd', null, dash(c.email)),
      h('dt', null, 'Plan'), h('dd', null, c.plan ? h('a', { href: '#/plans' }, c.plan) : '—'),
      h('dt', null, 'Currency'), h('dd', null, c.currency || h('span', { class: 'muted' }, `${defaultCurrency()} (organization default)`)),
      h('dt', null, 'Billing address'), h('dd', { dataset: { testid: 'customer-address' } }, addressText(c.billing_address)),
      h('dt', null, 'Invoice approval'), h('dd', null, c.require_approval ? 'Required' : 'Not required'),
      h('dt', null, 'Tax rate'), h('dd', null, c.tax_rate == null ? 'Organization default' : c.tax_rate),
      h('dt', null, 'Created'), h('dd', null, fmtDate(c.created_at)),
      h('dt', null, 'Updated'), h('dd', null, fmtDate(c.updated_at)))));
  };
  drawHead();
  drawDetails();
  clear(page).append(head);

  if (!plans) { page.appendChild(details); return; }

  const addr = c.billing_address || {};
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Save changes');
  const form = h('form', { 'aria-label': 'Edit customer' },
    h('div', { class: 'grid cols-2' },
      field({ label: 'Name', name: 'name', required: true, control: input({ value: c.name }) }),
      field({ label: 'Billing email', name: 'email', control: input({ type: 'email', value: c.email || '' }) }),
      field({ label: 'Currency', name: 'currency', control: input({ maxlength: 3, value: c.currency || '', placeholder: `${defaultCurrency()} (default)` }) }),
      field({ label: 'Plan', name: 'plan', control: select(plans.some(([v]) => v === (c.plan || '')) ? plans : [...plans, [c.plan, c.plan]], c.plan || '') }),
      field({ label: 'City', name: 'billing_address.city', control: input({ value: addr.city || '' }) }),
      field({ label: 'Country', name: 'billing_address.country', control: input({ value: addr.country || '' }) }),
      h('div', { class: 'span-2' }, checkbox({ name: 'require_approval', label: 'Require approval before invoices are issued', checked: c.require_approval }))),
    formAlert(),
    h('div', { class: 'form-actions' }, btn));

  onSubmit(form, btn, 'Saving…', async () => {
    const patch = {};
    const name = val(form, 'name');
    const email = val(form, 'email');
    const currency = val(form, 'currency').toUpperCase();
    const plan = val(form, 'plan');
    const approval = form.elements.namedItem('require_approval').checked;
    const a = c.billing_address || {};
    const city = val(form, 'billing_address.city');
    const country = val(form, 'billing_address.country');
    if (name !== c.name) patch.name = name;
    if (email !== (c.email || '')) patch.email = email || null;
    if (currency !== (c.currency || '')) patch.currency = currency || null;
    if (plan !== (c.plan || '')) patch.plan = plan || null;
    if (approval !== !!c.require_approval) patch.require_approval = approval;
    if (city !== (a.city || '') || country !== (a.country || '')) {
      patch.billing_address = { ...a, city: city || null, country: country || null };
    }
    if (!Object.keys(patch).length) { toast('Nothing to save — no field changed.'); return; }
    c = await api('PATCH', `/v1/customers/${encodeURIComponent(c.external_id)}`, patch);
    toast('Customer saved.');
    drawHead();
    drawDetails();
  });

  page.appendChild(h('div', { class: 'grid cols-2 split' }, details,
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, 'Edit customer')), h('div', { class: 'card-body' }, form))));
}

// ---------------------------------------------------------------------------
// metrics

const AGG = {
  sum: ['Sum', 'Adds up the quantity of every event.'],
  count: ['Count', 'Counts events; quantities are ignored.'],
  max: ['Maximum', 'The largest quantity seen in the period.'],
  unique_count: ['Unique count', 'Counts distinct values of one event property.'],
};

function metricForm(onDone, onCancel) {
  const agg = select(Object.entries(AGG).map(([k, [l]]) => [k, `${l} (${k})`]), 'sum');
  const aggHint = h('span', null, AGG.sum[1]);
  const uniqueField = field({ label: 'Unique property', name: 'unique_property', required: true, control: input({ mono: true, placeholder: 'user_id' }),
    hint: 'The event property whose distinct values are counted.' });
  uniqueField.hidden = true;
  agg.addEventListener('change', () => {
    aggHint.textContent = AGG[agg.value][1];
    uniqueField.hidden = agg.value !== 'unique_count';
  });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Create metric');
  const form = h('form', { 'aria-label': 'New metric' },
    h('div', { class: 'grid cols-2' },
      field({ label: 'Code', name: 'code', required: true, control: input({ mono: true, placeholder: 'api_calls', autocomplete: 'off' }),
        hint: 'Letters, digits and _ . : - — usage events name the metric by this code.' }),
      field({ label: 'Name', name: 'name', required: true, control: input({ placeholder: 'API calls' }) }),
      field({ label: 'Aggregation', name: 'aggregation', required: true, control: agg, hint: aggHint }),
      field({ label: 'Unit', name: 'unit', control: input({ placeholder: 'call, minute, GB-hour' }), hint: 'Shown next to quantities on invoices.' }),
      uniqueField),
    formAlert(),
    h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: onCancel }, 'Cancel'), btn));
  onSubmit(form, btn, 'Creating…', async () => {
    const body = { code: val(form, 'code'), name: val(form, 'name'), aggregation: agg.value };
    const unit = val(form, 'unit');
    if (unit) body.unit = unit;
    if (agg.value === 'unique_count') body.unique_property = val(form, 'unique_property') || null;
    const m = await api('POST', '/v1/metrics', body);
    delete state.cache.metrics;
    toast(`Metric “${m.code}” created.`);
    onDone(m);
  });
  return form;
}

function formToggle(page, title, newBtn, build, reload) {
  const slot = h('section', { class: 'card form-card', hidden: true });
  page.appendChild(slot);
  if (!newBtn) return slot;
  newBtn.addEventListener('click', async () => {
    if (!slot.hidden) return;
    const close = () => { slot.hidden = true; clear(slot); newBtn.disabled = false; };
    newBtn.disabled = true;
    const body = h('div', { class: 'card-body' }, loading());
    clear(slot).append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, title), h('p', { class: 'sub' }, 'Fields marked * are required.'))), body);
    slot.hidden = false;
    try {
      const form = await build(async (obj) => { close(); await reload(obj); }, close);
      clear(body).appendChild(form);
      const first = form.querySelector('input, select');
      if (first) first.focus();
    } catch (err) {
      clear(body).appendChild(h('div', { class: 'alert', role: 'alert' }, errorText(err)));
      newBtn.disabled = false;
    }
  });
  return slot;
}

async function pageMetrics(page) {
  const newBtn = canWriteCatalog() ? h('button', { class: 'btn primary', type: 'button' }, h('span', { class: 'plus' }, '+'), 'New metric') : null;
  page.appendChild(pageHead('Metrics', 'What you measure. Usage events name a metric by its code.', [newBtn]));
  const list = h('section', { class: 'card' }, loading());
  formToggle(page, 'New metric', newBtn, metricForm, () => draw());
  page.appendChild(list);

  async function draw() {
    const metrics = await getMetrics();
    clear(list);
    if (!metrics.length) {
      list.appendChild(empty('No metrics yet', canWriteCatalog() ? 'Define what you measure — for example API calls or VM minutes.' : 'Metrics will appear here once they are defined.'));
      return;
    }
    list.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', null, h('tr', null, h('th', null, 'Metric'), h('th', null, 'Aggregation'), h('th', null, 'Unit'),
        h('th', { class: 'hide-sm' }, 'Unique property'), h('th', { class: 'hide-sm' }, 'Created'))),
      h('tbody', null, metrics.map((m) => h('tr', { dataset: { code: m.code } },
        h('td', null, h('div', { class: 'primary-cell' }, m.name), h('div', { class: 'sub-cell' }, m.code)),
        h('td', null, h('span', { class: 'badge', title: (AGG[m.aggregation] || [])[1] }, m.aggregation)),
        h('td', null, dash(m.unit)),
        h('td', { class: 'hide-sm' }, m.unique_property ? h('code', null, m.unique_property) : '—'),
        h('td', { class: 'hide-sm' }, fmtDate(m.created_at))))))));
  }
  await draw();
}

// ---------------------------------------------------------------------------
// plans

const MODELS = {
  per_unit: ['Per unit', 'One price for every unit.'],
  package: ['Package', 'A price per started package of N units.'],
  graduated: ['Graduated tiers', 'Each tier prices the units that fall inside it.'],
  volume: ['Volume tiers', 'The tier the total reaches prices every unit.'],
};

function tierLines(ch, currency) {
  const tiers = ch.tiers || [];
  return h('ul', { class: 'tiers' }, tiers.map((t, i) => {
    const prev = i > 0 ? tiers[i - 1].up_to : null;
    let range;
    if (tiers.length === 1) range = 'All units';
    else if (i === 0) range = `Up to ${t.up_to}`;
    else if (t.up_to == null) range = `Above ${prev}`;
    else range = `${prev} – ${t.up_to}`;
    const flat = t.flat_fee && t.flat_fee !== '0' ? ` + ${money(t.flat_fee, currency)} flat` : '';
    return h('li', null, `${range}: `, h('span', { class: 'amt' }, money(t.unit_price, currency)), ' each', flat);
  }));
}

function chargeSummary(ch, currency, unitOf) {
  const unit = unitOf(ch.metric) || 'unit';
  let price;
  if (ch.model === 'per_unit') price = h('span', null, h('span', { class: 'amt' }, money(ch.unit_price, currency)), ` per ${unit}`);
  else if (ch.model === 'package') price = h('span', null, h('span', { class: 'amt' }, money(ch.unit_price, currency)), ` per package of ${ch.package_size} ${unit}`);
  else price = tierLines(ch, currency);
  const extras = [];
  if (ch.included_units && ch.included_units !== '0') extras.push(`Included: ${ch.included_units} ${unit}`);
  if (ch.minimum && ch.minimum !== '0') extras.push(`Minimum: ${money(ch.minimum, currency)}`);
  return [price, extras.length ? h('div', { class: 'charge-extra' }, extras.join(' · ')) : null];
}

async function pagePlans(page) {
  const newBtn = canWriteCatalog() ? h('button', { class: 'btn primary', type: 'button' }, h('span', { class: 'plus' }, '+'), 'New plan') : null;
  page.appendChild(pageHead('Plans', 'How usage becomes money: a base fee plus one charge per metric.', [newBtn]));
  const list = h('div', { class: 'plan-list' }, loading());
  formToggle(page, 'New plan', newBtn, planForm, () => draw());
  page.appendChild(list);

  async function draw() {
    const [plans, metrics] = await Promise.all([getPlans(), getMetrics()]);
    const units = new Map(metrics.map((m) => [m.code, m.unit]));
    const names = new Map(metrics.map((m) => [m.code, m.name]));
    clear(list);
    if (!plans.length) {
      list.appendChild(h('section', { class: 'card' }, empty('No plans yet',
        canWriteCatalog() ? 'Create a plan to price your metrics, then put customers on it.' : 'Plans will appear here once they are created.')));
      return;
    }
    for (const p of plans) {
      list.appendChild(h('section', { class: 'card plan-card', dataset: { code: p.code } },
        h('div', { class: 'card-head' },
          h('div', null, h('h2', null, p.name, h('span', { class: 'badge mono' }, p.code)),
            h('div', { class: 'plan-meta' },
              h('span', null, 'Currency ', h('strong', null, p.currency)),
              h('span', null, 'Base fee ', h('strong', null, money(p.base_fee || '0', p.currency))),
              h('span', null, `${p.charges.length} charge${p.charges.length === 1 ? '' : 's'}`)))),
        p.charges.length
          ? h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
            h('thead', null, h('tr', null, h('th', null, 'Metric'), h('th', null, 'Model'), h('th', null, 'Pricing'))),
            h('tbody', null, p.charges.map((ch) => h('tr', null,
              h('td', null, h('div', { class: 'primary-cell' }, names.get(ch.metric) || ch.metric), h('div', { class: 'sub-cell' }, ch.metric)),
              h('td', null, h('span', { class: 'badge blue', title: (MODELS[ch.model] || [])[1] }, ch.model)),
              h('td', null, chargeSummary(ch, p.currency, (code) => units.get(code))))))))
          : h('div', { class: 'card-body muted' }, 'Base fee only — no usage charges.')));
    }
  }
  await draw();
}

async function planForm(onDone, onCancel) {
  const org = currentOrg();
  const metrics = await getMetrics();
  const charges = h('div', { class: 'charges-editor' });
  const addCharge = h('button', { class: 'btn', type: 'button', disabled: !metrics.length }, h('span', { class: 'plus' }, '+'), 'Add charge');
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Create plan');
  const form = h('form', { 'aria-label': 'New plan' },
    h('div', { class: 'grid cols-4' },
      field({ label: 'Code', name: 'code', required: true, control: input({ mono: true, placeholder: 'pro-monthly', autocomplete: 'off' }) }),
      field({ label: 'Name', name: 'name', required: true, control: input({ placeholder: 'Pro' }) }),
      field({ label: 'Currency', name: 'currency', required: true, control: input({ maxlength: 3, value: org ? org.currency : 'USD' }) }),
      field({ label: 'Base fee', name: 'base_fee', control: input({ inputmode: 'decimal', placeholder: '0.00' }), hint: 'Charged every period.' })),
    h('fieldset', { class: 'charges-block' },
      h('legend', null, 'Usage charges'),
      metrics.length ? null : h('div', { class: 'alert warn' }, 'Define a metric first — charges price a metric. ', h('a', { href: '#/metrics' }, 'Go to metrics')),
      charges,
      h('div', { class: 'field-error', dataset: { errorFor: 'charges' }, hidden: true }),
      h('div', { class: 'form-actions' }, addCharge, h('div', { class: 'spacer' }))),
    formAlert(),
    h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: onCancel }, 'Cancel'), btn));

  // Each input carries data-rel (its key inside a charge or tier); reindex()
  // turns that into the API's field path so 422 details land next to it.
  const rel = (el, name) => { el.dataset.rel = name; return el; };
  const relField = (label, name, control, hint, required) => {
    const f = field({ label, control: rel(control, name), hint, required });
    f.querySelector('.field-error').dataset.relErr = name;
    return f;
  };

  function reindex() {
    [...charges.children].forEach((row, i) => {
      const p = `charges[${i}]`;
      row.querySelector('.charge-title h3').textContent = `Charge ${i + 1}`;
      row.querySelectorAll('[data-rel]').forEach((el) => {
        const tr = el.closest('tr.tier');
        const path = tr ? `${p}.tiers[${[...tr.parentNode.children].indexOf(tr)}].${el.dataset.rel}` : `${p}.${el.dataset.rel}`;
        el.dataset.field = path;
      });
      row.querySelectorAll('[data-rel-err]').forEach((el) => {
        const tr = el.closest('tr.tier');
        el.dataset.errorFor = tr ? `${p}.tiers[${[...tr.parentNode.children].indexOf(tr)}].${el.dataset.relErr}` : `${p}.${el.dataset.relErr}`;
      });
      const tb = row.querySelector('tbody');
      if (tb) {
        const trs = [...tb.children];
        trs.forEach((tr, j) => {
          const prev = j > 0 ? trs[j - 1].querySelector('[data-rel="up_to"]').value.trim() : '0';
          tr.querySelector('.tier-from').textContent = prev || '…';
          tr.querySelector('[data-rel="up_to"]').placeholder = j === trs.length - 1 ? '∞ (no limit)' : 'e.g. 1000';
          tr.querySelector('.tier-remove').disabled = trs.length <= 1;
        });
      }
    });
  }

  function tierRow(upTo = '', price = '') {
    const err = (name) => h('div', { class: 'field-error', dataset: { relErr: name }, hidden: true });
    const upInput = rel(input({ inputmode: 'decimal', value: upTo, 'aria-label': 'Up to' }), 'up_to');
    upInput.addEventListener('input', reindex);
    const tr = h('tr', { class: 'tier' },
      h('td', { class: 'tier-from' }, '0'),
      h('td', null, upInput, err('up_to')),
      h('td', null, rel(input({ inputmode: 'decimal', value: price, placeholder: '0.00', 'aria-label': 'Unit price' }), 'unit_price'), err('unit_price')),
      h('td', null, rel(input({ inputmode: 'decimal', placeholder: '0', 'aria-label': 'Flat fee' }), 'flat_fee'), err('flat_fee')),
      h('td', null, h('button', { class: 'btn ghost sm tier-remove', type: 'button', 'aria-label': 'Remove tier', onclick: () => { tr.remove(); reindex(); } }, '✕')));
    return tr;
  }

  function chargeRow() {
    const metricSel = rel(select(metrics.map((m) => [m.code, `${m.name} (${m.code})`]), metrics[0] ? metrics[0].code : ''), 'metric');
    const modelSel = rel(select(Object.entries(MODELS).map(([k, [l]]) => [k, l]), 'per_unit'), 'model');
    const modelHint = h('span', null, MODELS.per_unit[1]);
    const priceSlot = h('div');
    const row = h('div', { class: 'charge-row' },
      h('div', { class: 'charge-title' }, h('h3', null, 'Charge'),
        h('button', { class: 'btn ghost sm', type: 'button', onclick: () => { row.remove(); reindex(); } }, 'Remove')),
      h('div', { class: 'grid cols-2' },
        relField('Metric', 'metric', metricSel, null, true),
        relField('Pricing model', 'model', modelSel, modelHint, true)),
      priceSlot,
      h('div', { class: 'grid cols-2' },
        relField('Included units', 'included_units', input({ inputmode: 'decimal', placeholder: '0' }), 'Free units each period before pricing starts.'),
        relField('Minimum', 'minimum', input({ inputmode: 'decimal', placeholder: '0.00' }), 'Smallest amount this charge bills per period.')),
      h('div', { class: 'field-error', dataset: { relErr: 'tiers' }, hidden: true }));
    row.modelSel = modelSel;
    row.metricSel = metricSel;

    const drawPrice = () => {
      const m = modelSel.value;
      modelHint.textContent = MODELS[m][1];
      clear(priceSlot);
      if (m === 'per_unit') {
        priceSlot.appendChild(h('div', { class: 'grid cols-2' },
          relField('Unit price', 'unit_price', input({ inputmode: 'decimal', placeholder: '0.002' }), null, true)));
      } else if (m === 'package') {
        priceSlot.appendChild(h('div', { class: 'grid cols-2' },
          relField('Price per package', 'unit_price', input({ inputmode: 'decimal', placeholder: '5.00' }), null, true),
          relField('Package size', 'package_size', input({ inputmode: 'decimal', placeholder: '1000' }), 'Units per package; a started package is billed in full.', true)));
      } else {
        const tbody = h('tbody', null, tierRow(), tierRow());
        priceSlot.appendChild(h('div', { class: 'field' },
          h('span', { class: 'label' }, 'Tiers'),
          h('div', { class: 'table-wrap' }, h('table', { class: 'tier-table' },
            h('thead', null, h('tr', null, h('th', null, 'From'), h('th', null, 'Up to'), h('th', null, 'Unit price'), h('th', null, 'Flat fee'), h('th', null, ''))),
            tbody)),
          h('div', null, h('button', { class: 'btn sm', type: 'button', onclick: () => { tbody.appendChild(tierRow()); reindex(); } },
            h('span', { class: 'plus' }, '+'), 'Add tier')),
          h('div', { class: 'hint' }, 'Leave “Up to” empty on the last tier: it has no upper limit.')));
      }
      reindex();
    };
    modelSel.addEventListener('change', drawPrice);
    drawPrice();
    return row;
  }

  addCharge.addEventListener('click', () => { charges.appendChild(chargeRow()); reindex(); });
  if (metrics.length) { charges.appendChild(chargeRow()); reindex(); }

  onSubmit(form, btn, 'Creating…', async () => {
    reindex();
    const dec = (root, name) => {
      const el = root.querySelector(`[data-rel="${name}"]`);
      return el ? el.value.trim() : '';
    };
    const body = { code: val(form, 'code'), name: val(form, 'name'), currency: val(form, 'currency').toUpperCase(), charges: [] };
    const base = val(form, 'base_fee');
    if (base) body.base_fee = base;
    for (const row of charges.children) {
      const ch = { metric: row.metricSel.value, model: row.modelSel.value };
      if (ch.model === 'per_unit' || ch.model === 'package') {
        if (dec(row, 'unit_price')) ch.unit_price = dec(row, 'unit_price');
        if (ch.model === 'package' && dec(row, 'package_size')) ch.package_size = dec(row, 'package_size');
      } else {
        ch.tiers = [...row.querySelectorAll('tr.tier')].map((tr) => {
          const t = { up_to: dec(tr, 'up_to') || null };
          if (dec(tr, 'unit_price')) t.unit_price = dec(tr, 'unit_price');
          if (dec(tr, 'flat_fee')) t.flat_fee = dec(tr, 'flat_fee');
          return t;
        });
      }
      if (dec(row, 'included_units')) ch.included_units = dec(row, 'included_units');
      if (dec(row, 'minimum')) ch.minimum = dec(row, 'minimum');
      body.charges.push(ch);
    }
    const p = await api('POST', '/v1/plans', body);
    delete state.cache.plans;
    toast(`Plan “${p.name}” created.`);
    onDone(p);
  });
  return form;
}

// ---------------------------------------------------------------------------
// settings: organization, team, API keys (owners and platform admins)

async function pageSettings(page) {
  const org = currentOrg();
  page.appendChild(pageHead('Settings', org ? `${org.name} · ${org.slug}` : null));
  if (!isOwner()) {
    page.appendChild(h('div', { class: 'alert info' }, 'Only organization owners can manage the team and API keys.'));
    return;
  }
  if (org) {
    page.appendChild(h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', null, 'Organization')),
      h('div', { class: 'card-body' }, h('dl', { class: 'kv' },
        h('dt', null, 'Name'), h('dd', null, org.name),
        h('dt', null, 'Slug'), h('dd', null, h('code', null, org.slug)),
        h('dt', null, 'Default currency'), h('dd', null, dash(org.currency)),
        h('dt', null, 'Invoice prefix'), h('dd', null, dash(org.invoice_prefix)),
        h('dt', null, 'Tax rate'), h('dd', null, dash(org.tax_rate))))));
  }
  const team = h('section', { class: 'card', id: 'team' });
  const keys = h('section', { class: 'card', id: 'api-keys' });
  page.append(keys, team);
  await Promise.all([drawKeys(keys), drawTeam(team)]);
}

async function drawTeam(card) {
  const addBtn = h('button', { class: 'btn sm', type: 'button' }, h('span', { class: 'plus' }, '+'), 'Add member');
  const formSlot = h('div', { class: 'card-body', hidden: true });
  const list = h('div', null, loading());
  clear(card).append(h('div', { class: 'card-head' },
    h('div', null, h('h2', null, 'Team'), h('p', { class: 'sub' }, 'People who can sign in to this organization.')), addBtn),
  formSlot, list);

  const ROLES = [['viewer', 'Viewer — read only'], ['approver', 'Approver — approves invoices'],
    ['finance', 'Finance — plans, customers, invoices'], ['owner', 'Owner — everything, incl. team and keys']];

  addBtn.addEventListener('click', () => {
    const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Add member');
    const close = () => { formSlot.hidden = true; clear(formSlot); addBtn.disabled = false; };
    const form = h('form', { 'aria-label': 'Add team member' },
      h('div', { class: 'grid cols-2' },
        field({ label: 'Name', name: 'name', required: true, control: input({ autocomplete: 'off' }) }),
        field({ label: 'Email', name: 'email', required: true, control: input({ type: 'email', autocomplete: 'off' }) }),
        field({ label: 'Initial password', name: 'password', required: true, control: input({ type: 'password', autocomplete: 'new-password' }),
          hint: 'At least 8 characters. Share it with them privately.' }),
        field({ label: 'Role', name: 'role', required: true, control: select(ROLES, 'viewer') })),
      formAlert(),
      h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: close }, 'Cancel'), btn));
    onSubmit(form, btn, 'Adding…', async () => {
      const u = await api('POST', '/v1/users', { name: val(form, 'name'), email: val(form, 'email'),
        password: form.elements.namedItem('password').value, role: val(form, 'role') });
      toast(`${u.name} can now sign in as ${u.role}.`);
      close();
      await drawList();
    });
    addBtn.disabled = true;
    clear(formSlot).appendChild(form);
    formSlot.hidden = false;
    form.elements.namedItem('name').focus();
  });

  async function drawList() {
    const users = await listAll('/v1/users');
    clear(list).appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', null, h('tr', null, h('th', null, 'Member'), h('th', null, 'Role'), h('th', { class: 'hide-sm' }, 'Added'))),
      h('tbody', null, users.map((u) => h('tr', { dataset: { email: u.email } },
        h('td', null, h('div', { class: 'primary-cell' }, u.name), h('div', { class: 'muted small' }, u.email)),
        h('td', null, h('span', { class: `badge ${u.role === 'owner' ? 'blue' : ''}` }, ROLE_LABEL[u.role] || u.role)),
        h('td', { class: 'hide-sm' }, fmtDate(u.created_at))))))));
  }
  await drawList();
}

async function copyText(text, inputEl) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    inputEl.focus();
    inputEl.select();
    try { return document.execCommand('copy'); } catch { return false; }
  }
}

async function drawKeys(card) {
  const newBtn = h('button', { class: 'btn sm', type: 'button' }, h('span', { class: 'plus' }, '+'), 'Create API key');
  const formSlot = h('div', { class: 'card-body', hidden: true });
  const secretSlot = h('div', { class: 'card-body', hidden: true });
  const list = h('div', null, loading());
  clear(card).append(h('div', { class: 'card-head' },
    h('div', null, h('h2', null, 'API keys'), h('p', { class: 'sub' }, 'Keys let your servers send usage and read data. A key is shown only once, right after it is created.')),
    newBtn), secretSlot, formSlot, list);

  function showSecret(k) {
    const keyInput = input({ readonly: true, value: k.key, 'aria-label': 'New API key', dataset: { testid: 'new-key' } });
    const copy = h('button', { class: 'btn primary', type: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      const ok = await copyText(k.key, keyInput);
      copy.textContent = ok ? 'Copied ✓' : 'Select and copy';
      setTimeout(() => { copy.textContent = 'Copy'; }, 2000);
    });
    const done = h('button', { class: 'btn', type: 'button' }, 'I have stored it safely');
    done.addEventListener('click', () => { keyInput.value = ''; clear(secretSlot); secretSlot.hidden = true; });
    clear(secretSlot).appendChild(h('div', { class: 'secret', role: 'status' },
      h('div', { class: 'secret-title' }, `Your new key “${k.name}”`),
      h('p', null, 'Copy it now and store it in your secrets manager. For your security it will not be shown again.'),
      h('div', { class: 'secret-row' }, keyInput, copy),
      h('div', null, done)));
    secretSlot.hidden = false;
    keyInput.addEventListener('focus', () => keyInput.select());
  }

  newBtn.addEventListener('click', () => {
    const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Create key');
    const close = () => { formSlot.hidden = true; clear(formSlot); newBtn.disabled = false; };
    const form = h('form', { 'aria-label': 'New API key' },
      h('div', { class: 'grid cols-2' },
        field({ label: 'Name', name: 'name', required: true, control: input({ placeholder: 'Production ingest', autocomplete: 'off' }),
          hint: 'Where the key is used, so you know what breaks if you revoke it.' }),
        h('div', { class: 'field' }, h('span', { class: 'label' }, 'Scopes'),
          checkbox({ name: 'scope_usage', label: 'usage:write', hint: 'Send usage events (POST /v1/usage).', checked: true }),
          checkbox({ name: 'scope_read', label: 'read', hint: 'Read customers, metrics, plans and usage.' }),
          h('div', { class: 'field-error', dataset: { errorFor: 'scopes' }, hidden: true }))),
      formAlert(),
      h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: close }, 'Cancel'), btn));
    onSubmit(form, btn, 'Creating…', async () => {
      const scopes = [];
      if (form.elements.namedItem('scope_usage').checked) scopes.push('usage:write');
      if (form.elements.namedItem('scope_read').checked) scopes.push('read');
      const k = await api('POST', '/v1/api-keys', { name: val(form, 'name'), scopes });
      close();
      showSecret(k);
      await drawList();
    });
    newBtn.disabled = true;
    clear(formSlot).appendChild(form);
    formSlot.hidden = false;
    form.elements.namedItem('name').focus();
  });

  function revokeCell(k) {
    const cell = h('td', { class: 'right' });
    const ask = () => {
      const yes = h('button', { class: 'btn danger solid sm', type: 'button' }, 'Revoke');
      const no = h('button', { class: 'btn sm', type: 'button', onclick: idle }, 'Keep');
      yes.addEventListener('click', async () => {
        yes.disabled = true;
        try {
          await api('DELETE', `/v1/api-keys/${encodeURIComponent(k.id)}`);
          toast(`Key “${k.name}” revoked. Requests using it now fail.`);
          await drawList();
        } catch (err) {
          toast(errorText(err), 'error');
          yes.disabled = false;
        }
      });
      clear(cell).appendChild(h('span', { class: 'confirm-inline' }, h('span', { class: 'q' }, 'Revoke this key?'), no, yes));
    };
    function idle() { clear(cell).appendChild(h('button', { class: 'btn danger sm', type: 'button', onclick: ask }, 'Revoke')); }
    if (k.revoked_at) cell.appendChild(h('span', { class: 'badge red' }, `Revoked ${fmtDate(k.revoked_at)}`));
    else idle();
    return cell;
  }

  async function drawList() {
    const rows = await listAll('/v1/api-keys');
    rows.sort((a, b) => (!!a.revoked_at - !!b.revoked_at));
    clear(list);
    if (!rows.length) {
      list.appendChild(empty('No API keys', 'Create a key for each server or integration that sends usage.'));
      return;
    }
    list.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Key'), h('th', null, 'Scopes'),
        h('th', { class: 'hide-sm' }, 'Created'), h('th', { class: 'hide-sm' }, 'Last used'), h('th', { class: 'right' }, ''))),
      h('tbody', null, rows.map((k) => h('tr', { dataset: { keyId: k.id } },
        h('td', { class: 'primary-cell' }, k.name),
        h('td', null, h('code', null, `${k.prefix}…`)),
        h('td', null, (k.scopes || []).map((s) => h('span', { class: 'badge' }, s)).reduce((a, b) => (a.length ? [...a, ' ', b] : [b]), [])),
        h('td', { class: 'hide-sm' }, fmtDate(k.created_at)),
        h('td', { class: 'hide-sm' }, k.last_used_at ? fmtDate(k.last_used_at) : h('span', { class: 'muted' }, 'Never')),
        revokeCell(k)))))));
  }
  await drawList();
}

// ---------------------------------------------------------------------------
// usage: aggregates (chart + buckets), raw events, CSV imports
//
// Time: the filter's from/to are wall-clock values in the chosen IANA zone
// (never the browser's), turned into UTC instants with Intl only when a
// request is made.  Quantities stay decimal strings; totals are summed with
// BigInt-scaled integers (decAdd), floats only size the bars.

const COMMON_TZ = ['UTC', 'America/Los_Angeles', 'America/Denver', 'America/Chicago', 'America/New_York',
  'America/Sao_Paulo', 'Europe/London', 'Europe/Paris', 'Europe/Berlin', 'Europe/Zurich', 'Europe/Helsinki',
  'Africa/Johannesburg', 'Asia/Dubai', 'Asia/Kolkata', 'Asia/Kathmandu', 'Asia/Singapore', 'Asia/Shanghai',
  'Asia/Tokyo', 'Australia/Sydney', 'Pacific/Auckland'];
const GRAN = { hour: ['Hourly', 'hour'], day: ['Daily', 'day'], month: ['Monthly', 'month'] };
const CAN_TOTAL = { sum: true, count: true };

// ICU still reports some zones by their old names.
const TZ_ALIAS = { 'Asia/Katmandu': 'Asia/Kathmandu', 'Asia/Calcutta': 'Asia/Kolkata', 'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Europe/Kiev': 'Europe/Kyiv', 'Asia/Rangoon': 'Asia/Yangon', 'Etc/UTC': 'UTC', 'Etc/GMT': 'UTC' };
function browserTz() {
  let z = 'UTC';
  try { z = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { /* keep UTC */ }
  return TZ_ALIAS[z] || z;
}

// -- decimal strings (exact) ------------------------------------------------

function decParse(s) {
  const m = /^([+-])?(\d*)(?:\.(\d*))?$/.exec(String(s == null ? '0' : s).trim());
  if (!m || (!m[2] && !m[3])) return null;
  const frac = m[3] || '';
  let v = BigInt(`${m[2] || '0'}${frac}`);
  if (m[1] === '-') v = -v;
  return { v, scale: frac.length };
}
const decAt = (d, scale) => d.v * 10n ** BigInt(scale - d.scale);
function decAdd(a, b) {
  const s = Math.max(a.scale, b.scale);
  return { v: decAt(a, s) + decAt(b, s), scale: s };
}
function decCmp(a, b) {
  const s = Math.max(a.scale, b.scale);
  const x = decAt(a, s);
  const y = decAt(b, s);
  return x < y ? -1 : x > y ? 1 : 0;
}
function decStr(d) {
  const neg = d.v < 0n;
  let s = (neg ? -d.v : d.v).toString();
  if (d.scale) {
    s = s.padStart(d.scale + 1, '0');
    s = `${s.slice(0, -d.scale)}.${s.slice(-d.scale)}`;
  }
  return `${neg ? '-' : ''}${s}`;
}
// Sum of decimal strings, exact (sum(['0.1', '0.2']) === '0.3').
function decSum(list) {
  let acc = { v: 0n, scale: 0 };
  for (const s of list) { const d = decParse(s); if (d) acc = decAdd(acc, d); }
  return decStr(acc);
}
function decMax(list) {
  let best = null;
  for (const s of list) { const d = decParse(s); if (d && (!best || decCmp(d, best) > 0)) best = d; }
  return best ? decStr(best) : '0';
}
// Digit grouping for display; the digits themselves are untouched.
let numFmt = null;
function fmtQty(s) {
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(String(s));
  if (!m) return String(s);
  if (!numFmt) {
    numFmt = new Intl.NumberFormat(undefined, { useGrouping: true });
    numFmt.dec = (numFmt.formatToParts(1.5).find((p) => p.type === 'decimal') || { value: '.' }).value;
  }
  return `${m[1]}${numFmt.format(BigInt(m[2]))}${m[3] ? numFmt.dec + m[3].slice(1) : ''}`;
}

// -- wall-clock time in a zone ---------------------------------------------

const tzFmt = new Map();
function tzParts(ms, tz) {
  let f = tzFmt.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric' });
    tzFmt.set(tz, f);
  }
  const o = {};
  for (const p of f.formatToParts(new Date(ms))) if (p.type !== 'literal') o[p.type] = Number(p.value);
  if (o.hour === 24) o.hour = 0;
  return o;
}
function tzOffset(ms, tz) {
  const t = Math.floor(ms / 1000) * 1000;
  const p = tzParts(t, tz);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - t;
}
// UTC ms of a wall-clock time in tz (fields may overflow: month 13, day 0 …).
function wallToUtc(w, tz) {
  const wall = Date.UTC(w.y, w.mo - 1, w.d || 1, w.h || 0, w.mi || 0);
  const first = wall - tzOffset(wall, tz);
  return wall - tzOffset(first, tz);
}
const pad2 = (n) => String(n).padStart(2, '0');
function wallNorm(w) { // normalise overflowing fields through Date.UTC
  const d = new Date(Date.UTC(w.y, w.mo - 1, w.d || 1, w.h || 0, w.mi || 0));
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes() };
}
// The value of the range inputs for a granularity: datetime-local, date, month.
function wallToInput(w, gran) {
  const ymd = `${String(w.y).padStart(4, '0')}-${pad2(w.mo)}`;
  if (gran === 'month') return ymd;
  if (gran === 'day') return `${ymd}-${pad2(w.d)}`;
  return `${ymd}-${pad2(w.d)}T${pad2(w.h)}:${pad2(w.mi)}`;
}
function inputToWall(s) {
  const m = /^(\d{4})-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}))?)?/.exec(s || '');
  if (!m) return null;
  return { y: +m[1], mo: +m[2], d: m[3] ? +m[3] : 1, h: m[4] ? +m[4] : 0, mi: m[5] ? +m[5] : 0 };
}
const isoUtc = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

// Default range, aligned to buckets of tz: the last 7 days of hours (through
// the current hour), the current month of days, the last 12 months.
function defaultRange(gran, tz) {
  const p = tzParts(Date.now(), tz);
  let from;
  let to;
  if (gran === 'hour') {
    to = wallNorm({ y: p.year, mo: p.month, d: p.day, h: p.hour + 1 });
    from = wallNorm({ ...to, d: to.d - 7 });
  } else if (gran === 'day') {
    from = { y: p.year, mo: p.month, d: 1, h: 0, mi: 0 };
    to = wallNorm({ y: p.year, mo: p.month + 1, d: 1 });
  } else {
    from = wallNorm({ y: p.year, mo: p.month - 11, d: 1 });
    to = wallNorm({ y: p.year, mo: p.month + 1, d: 1 });
  }
  return { from: wallToInput(from, gran), to: wallToInput(to, gran) };
}

const dateFmts = new Map();
function fmtIn(ms, tz, opts) {
  const key = `${tz}|${JSON.stringify(opts)}`;
  let f = dateFmts.get(key);
  if (!f) {
    try { f = new Intl.DateTimeFormat(undefined, { timeZone: tz, ...opts }); } catch { f = new Intl.DateTimeFormat(undefined, opts); }
    dateFmts.set(key, f);
  }
  return f.format(new Date(ms));
}
const HM = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
function bucketLabel(ms, gran, tz) {
  if (gran === 'month') return fmtIn(ms, tz, { month: 'long', year: 'numeric' });
  if (gran === 'day') return fmtIn(ms, tz, { weekday: 'short', month: 'short', day: 'numeric', year: 'numeric' });
  return fmtIn(ms, tz, { weekday: 'short', month: 'short', day: 'numeric', ...HM });
}
function bucketRange(startMs, endMs, gran, tz) {
  if (gran === 'hour') {
    return `${fmtIn(startMs, tz, { weekday: 'short', month: 'short', day: 'numeric', year: 'numeric', ...HM })} – ${fmtIn(endMs, tz, HM)}`;
  }
  return bucketLabel(startMs, gran, tz);
}
function fmtStamp(s, tz) {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return s || '—';
  return fmtIn(ms, tz, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

const withOrg = (url) => (isAdmin() && state.org ? `${url}${url.includes('?') ? '&' : '?'}org=${encodeURIComponent(state.org)}` : url);

// -- the chart ---------------------------------------------------------------

function svgEl(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
  for (const k of kids) if (k != null) el.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
  return el;
}

function niceStep(max, n) {
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}
function axisNum(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(4));
}

// Bars for one series: rows [{start, end, quantity, events}] (ms, decimal string).
function drawChart(wrap, rows, { gran, tz, unit, name }) {
  const tip = h('div', { class: 'chart-tip', role: 'tooltip', hidden: true });
  const cs = getComputedStyle(wrap);
  const inner = wrap.clientWidth - (Number.parseFloat(cs.paddingLeft) || 0) - (Number.parseFloat(cs.paddingRight) || 0);
  const W = Math.max(260, Math.floor(inner > 0 ? inner : 720));
  const H = W < 520 ? 220 : 280;
  const vals = rows.map((r) => Number.parseFloat(r.quantity) || 0);
  const max = Math.max(0, ...vals);
  const step = max > 0 ? niceStep(max, 4) : 1;
  const top = max > 0 ? Math.ceil(max / step) * step : 4;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  const left = 12 + 7 * Math.max(...ticks.map((t) => axisNum(t).length));
  const M = { l: left, r: 12, t: 14, b: 30 };
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const n = Math.max(rows.length, 1);
  const bw = pw / n;
  const gap = bw > 8 ? bw * 0.22 : bw > 3 ? 1 : 0;
  const y = (v) => M.t + ph - (top ? (v / top) * ph : 0);

  const svg = svgEl('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': `${name}: ${rows.length} ${GRAN[gran][1]} buckets in ${tz}` });
  const grid = svgEl('g', { class: 'grid-lines' });
  for (const t of ticks) {
    const yy = Math.round(y(t)) + 0.5;
    grid.appendChild(svgEl('line', { x1: M.l, x2: W - M.r, y1: yy, y2: yy }));
    grid.appendChild(svgEl('text', { x: M.l - 8, y: yy + 4, 'text-anchor': 'end', class: 'tick' }, axisNum(t)));
  }
  svg.appendChild(grid);

  // x labels: about one per 80 px, on "round" buckets where possible
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(pw / 84))));
  const nice = gran === 'hour' ? [1, 2, 3, 4, 6, 12, 24, 48, 72, 168] : gran === 'day' ? [1, 2, 3, 7, 14, 28] : [1, 2, 3, 6, 12, 24];
  const lstep = nice.find((s) => s >= every) || every;
  const xl = svgEl('g', { class: 'x-labels' });
  rows.forEach((r, i) => {
    if (i % lstep) return;
    let label;
    if (gran === 'month') label = fmtIn(r.start, tz, { month: 'short', year: '2-digit' });
    else if (gran === 'day') label = fmtIn(r.start, tz, { month: 'short', day: 'numeric' });
    else {
      const p = tzParts(r.start, tz);
      label = p.hour === 0 && p.minute === 0 || lstep >= 24 || i === 0
        ? fmtIn(r.start, tz, { month: 'short', day: 'numeric' }) : fmtIn(r.start, tz, HM);
    }
    const x = M.l + i * bw + bw / 2;
    xl.appendChild(svgEl('line', { class: 'x-tick', x1: x, x2: x, y1: M.t + ph, y2: M.t + ph + 4 }));
    xl.appendChild(svgEl('text', { x, y: H - 10, 'text-anchor': i === 0 && bw < 30 ? 'start' : 'middle', class: 'tick' }, label));
  });
  svg.appendChild(xl);

  const bars = svgEl('g', { class: 'bars' });
  rows.forEach((r, i) => {
    const v = vals[i];
    const x = M.l + i * bw + gap / 2;
    const yy = y(v);
    const hgt = Math.max(v > 0 ? 1 : 0, M.t + ph - yy);
    const range = bucketRange(r.start, r.end, gran, tz);
    const qty = `${fmtQty(r.quantity)}${unit ? ` ${unit}` : ''}`;
    const g = svgEl('g', { class: 'bar', 'data-start': isoUtc(r.start), 'data-quantity': r.quantity },
      svgEl('title', null, `${range} (${tz})\n${qty} · ${r.events} event${r.events === 1 ? '' : 's'}`),
      svgEl('rect', { class: 'hit', x: M.l + i * bw, y: M.t, width: Math.max(bw, 0.5), height: ph }),
      svgEl('rect', { class: 'fill', x, y: M.t + ph - hgt, width: Math.max(bw - gap, 0.5), height: hgt, rx: bw > 8 ? 2 : 0 }));
    g.addEventListener('mouseenter', () => {
      clear(tip).append(h('div', { class: 'tip-time' }, range), h('div', { class: 'tip-zone' }, tz),
        h('div', { class: 'tip-qty' }, qty), h('div', { class: 'tip-events' }, `${r.events} event${r.events === 1 ? '' : 's'}`));
      tip.hidden = false;
      const tw = tip.offsetWidth;
      const cx = M.l + i * bw + bw / 2;
      tip.style.left = `${Math.min(Math.max(cx - tw / 2, 0), W - tw)}px`;
      tip.style.top = `${Math.max(0, yy - tip.offsetHeight - 8)}px`;
    });
    g.addEventListener('mouseleave', () => { tip.hidden = true; });
    bars.appendChild(g);
  });
  svg.appendChild(bars);
  svg.appendChild(svgEl('line', { class: 'axis', x1: M.l, x2: W - M.r, y1: M.t + ph + 0.5, y2: M.t + ph + 0.5 }));
  clear(wrap).appendChild(h('div', { class: 'chart-box' }, svg, tip));
}

// -- the page -----------------------------------------------------------------

async function pageUsage(page) {
  const canImport = canWriteCatalog();
  page.appendChild(pageHead('Usage', 'Metered events per customer and metric: aggregates, raw events and CSV imports.'));
  const [metrics, firstCustomers] = await Promise.all([
    getMetrics(),
    api('GET', '/v1/customers?limit=200'),
  ]);
  const metricBy = new Map(metrics.map((m) => [m.code, m]));
  const customerNames = new Map(firstCustomers.data.map((c) => [c.external_id, c.name]));
  const manyCustomers = !!firstCustomers.next_cursor;

  if (!state.usage) {
    const tz = browserTz();
    state.usage = { customer: '', metric: '', gran: 'day', tz, custom: false, ...defaultRange('day', tz) };
  }
  const F = state.usage;

  // ---- filters
  const dl = h('datalist', { id: nextId('customers') });
  const fillCustomers = (list) => {
    clear(dl);
    for (const c of list) { customerNames.set(c.external_id, c.name); dl.appendChild(h('option', { value: c.external_id }, c.name)); }
  };
  fillCustomers(firstCustomers.data);
  const custIn = input({ type: 'search', mono: true, list: dl.id, value: F.customer, placeholder: 'All customers', autocomplete: 'off' });
  const custHint = h('span');
  const showCustHint = () => {
    const v = custIn.value.trim();
    custHint.textContent = !v ? 'Type to search by name or external ID.' : customerNames.has(v) ? customerNames.get(v) : 'External ID of one customer.';
  };
  showCustHint();
  let custTimer = null;
  custIn.addEventListener('input', () => {
    showCustHint();
    if (!manyCustomers) return;
    clearTimeout(custTimer);
    custTimer = setTimeout(async () => {
      const q = custIn.value.trim();
      try {
        const r = await api('GET', `/v1/customers?limit=50${q ? `&q=${encodeURIComponent(q)}` : ''}`);
        fillCustomers(r.data);
        showCustHint();
      } catch { /* keep the old suggestions */ }
    }, 250);
  });

  const metricSel = select([['', 'All metrics'], ...metrics.map((m) => [m.code, `${m.name} (${m.code})`])], F.metric);
  const granSel = select(Object.entries(GRAN).map(([k, [l]]) => [k, l]), F.gran);
  const zones = COMMON_TZ.includes(F.tz) ? COMMON_TZ : [F.tz, ...COMMON_TZ];
  const bz = browserTz();
  const tzSel = select(zones.map((z) => [z, z === bz ? `${z} (this browser)` : z]), F.tz);
  const TYPES = { hour: 'datetime-local', day: 'date', month: 'month' };
  const fromIn = input({ type: TYPES[F.gran], value: F.from, required: true });
  const toIn = input({ type: TYPES[F.gran], value: F.to, required: true });
  const setStep = () => {
    for (const el of [fromIn, toIn]) {
      el.type = TYPES[granSel.value];
      if (granSel.value === 'hour') el.step = '3600'; else el.removeAttribute('step');
    }
  };
  setStep();
  const applyBtn = h('button', { class: 'btn primary', type: 'submit' }, 'Apply');
  const resetBtn = h('button', { class: 'btn', type: 'button' }, 'Default range');
  const rangeNote = h('p', { class: 'muted small range-note', 'aria-live': 'polite' });
  const filters = h('form', { class: 'card-body usage-filters', 'aria-label': 'Usage filters' },
    h('div', { class: 'filter-grid' },
      field({ label: 'Customer', name: 'customer_id', control: custIn, hint: custHint }),
      field({ label: 'Metric', name: 'metric', control: metricSel }),
      field({ label: 'Granularity', name: 'granularity', control: granSel }),
      field({ label: 'Time zone', name: 'tz', control: tzSel }),
      field({ label: 'From', name: 'from', control: fromIn, hint: 'Inclusive: the first bucket.' }),
      field({ label: 'To (exclusive)', name: 'to', control: toIn, hint: 'The first bucket not included.' })),
    dl,
    formAlert(),
    h('div', { class: 'filter-actions' }, rangeNote, h('div', { class: 'spacer' }), resetBtn, applyBtn));
  filters.noValidate = true;

  // ---- aggregates card
  const seriesBar = h('div', { class: 'series', role: 'group', 'aria-label': 'Metric shown in the chart' });
  const chartWrap = h('div', { class: 'chart-wrap' });
  const bucketsSlot = h('div');
  const aggStatus = h('div');
  const aggCard = h('section', { class: 'card', id: 'usage-aggregates' },
    h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Usage over time'),
      h('p', { class: 'sub' }, 'Bucketed in the chosen time zone; quantities are exact.'))),
    filters, aggStatus, seriesBar, chartWrap, bucketsSlot);

  // ---- events card
  const csvLink = h('a', { class: 'btn sm', href: '#', download: '', dataset: { testid: 'usage-csv' } }, 'Download CSV');
  const evTbody = h('tbody');
  const evTable = h('div', { class: 'table-wrap', hidden: true }, h('table', { class: 'table events-table' },
    h('thead', null, h('tr', null, h('th', null, 'Event ID'), h('th', null, 'Customer'), h('th', null, 'Metric'),
      h('th', { class: 'right' }, 'Quantity'), h('th', { class: 'ev-time-head' }, 'Time'), h('th', { class: 'hide-sm' }, 'Properties'))),
    evTbody));
  const evStatus = h('div');
  const evCount = h('span', { class: 'count' });
  const evMore = h('button', { class: 'btn', type: 'button' }, 'Load more');
  const evFoot = h('div', { class: 'card-foot', hidden: true }, evMore);
  const evCard = h('section', { class: 'card', id: 'usage-events' },
    h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Events'),
      h('p', { class: 'sub' }, 'Raw usage events matching the filters above, newest first.')),
    h('div', { class: 'head-actions' }, evCount, csvLink)),
    evTable, evStatus, evFoot);

  // ---- imports
  const impCards = h('div', { class: 'imports' });
  page.append(aggCard, evCard, impCards);

  if (!metrics.length) {
    clear(aggStatus).appendChild(empty('No metrics yet', 'Usage is recorded per metric. Define one first.',
      h('a', { class: 'btn sm', href: '#/metrics' }, 'Go to metrics')));
  }

  // ---- reading the filters
  let applied = null;
  function readFilters() {
    const errs = [];
    const tz = tzSel.value;
    const gran = granSel.value;
    const fw = inputToWall(fromIn.value);
    const tw = inputToWall(toIn.value);
    if (!fw) errs.push({ field: 'from', message: 'Pick the first bucket of the range.' });
    if (!tw) errs.push({ field: 'to', message: 'Pick where the range ends.' });
    const from = fw ? wallToUtc(fw, tz) : null;
    const to = tw ? wallToUtc(tw, tz) : null;
    if (fw && tw && to <= from) errs.push({ field: 'to', message: 'Must be later than From.' });
    if (errs.length) throw new ApiError(422, { error: { message: 'Check the range.', details: errs } });
    return { customer: custIn.value.trim(), metric: metricSel.value, gran, tz, from, to, fromText: fromIn.value, toText: toIn.value };
  }

  function eventsQuery(f, extra = {}) {
    const qs = new URLSearchParams();
    if (f.customer) qs.set('customer_id', f.customer);
    if (f.metric) qs.set('metric', f.metric);
    qs.set('from', isoUtc(f.from));
    qs.set('to', isoUtc(f.to));
    for (const [k, v] of Object.entries(extra)) qs.set(k, v);
    return qs;
  }

  // ---- aggregates
  let aggSeq = 0;
  let series = [];
  let chosen = null;
  async function loadAggregates(f) {
    const my = ++aggSeq;
    if (!metrics.length) return;
    const qs = new URLSearchParams({ from: isoUtc(f.from), to: isoUtc(f.to), granularity: f.gran, tz: f.tz, fill: 'zero' });
    if (f.customer) qs.set('customer_id', f.customer);
    if (f.metric) qs.set('metric', f.metric); else qs.set('group_by', 'metric');
    clear(aggStatus).appendChild(loading());
    chartWrap.classList.add('stale');
    let res;
    try {
      res = await api('GET', `/v1/usage/aggregate?${qs}`);
    } catch (err) {
      if (my !== aggSeq) return;
      clear(aggStatus);
      chartWrap.classList.remove('stale');
      if (err.status === 422 || err.status === 400) showErrors(filters, err);
      else aggStatus.appendChild(h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
      clear(seriesBar); clear(chartWrap); clear(bucketsSlot);
      return;
    }
    if (my !== aggSeq) return;
    clear(aggStatus);
    chartWrap.classList.remove('stale');
    // one series per metric, in the metric list's order
    const by = new Map();
    for (const r of res.data) {
      const code = r.metric || f.metric;
      if (!by.has(code)) by.set(code, []);
      by.get(code).push({ start: Date.parse(r.bucket_start), end: Date.parse(r.bucket_end), quantity: r.quantity, events: r.events });
    }
    series = [...by.entries()].map(([code, rows]) => {
      const m = metricBy.get(code) || { code, name: code, aggregation: 'sum' };
      const additive = !!CAN_TOTAL[m.aggregation];
      return { code, m, rows, additive, total: additive ? decSum(rows.map((r) => r.quantity)) : decMax(rows.map((r) => r.quantity)),
        events: rows.reduce((a, r) => a + Number(r.events || 0), 0) };
    }).sort((a, b) => metrics.indexOf(a.m) - metrics.indexOf(b.m));
    const nb = series.length ? series[0].rows.length : 0;
    const tzNote = f.tz === 'UTC' ? 'UTC' : f.tz;
    rangeNote.textContent = `${fmtIn(f.from, f.tz, { dateStyle: 'medium', timeStyle: 'short' })} → ${fmtIn(f.to, f.tz, { dateStyle: 'medium', timeStyle: 'short' })} · ${tzNote}${nb ? ` · ${nb} ${GRAN[f.gran][0].toLowerCase()} bucket${nb === 1 ? '' : 's'}` : ''}`;
    if (!series.length) {
      clear(seriesBar); clear(chartWrap); clear(bucketsSlot);
      aggStatus.appendChild(empty('No usage in this range', f.customer || f.metric
        ? 'Nothing was recorded for this customer and metric between these times. Try a wider range.'
        : 'No events were recorded between these times. Send events with POST /v1/usage or import a CSV file below.'));
      return;
    }
    if (!series.some((s) => s.code === chosen)) chosen = (series.find((s) => s.events > 0) || series[0]).code;
    drawSeries(f);
  }

  function totalLabel(s) { return s.additive ? 'Total' : s.m.aggregation === 'max' ? 'Peak' : 'Largest bucket'; }

  function drawSeries(f) {
    clear(seriesBar);
    for (const s of series) {
      const unit = s.m.unit ? ` ${s.m.unit}` : '';
      const b = h('button', { class: `series-chip ${s.code === chosen ? 'on' : ''}`, type: 'button', 'aria-pressed': String(s.code === chosen),
        dataset: { metric: s.code } },
      h('span', { class: 'chip-name' }, s.m.name),
      h('span', { class: 'chip-label' }, totalLabel(s)),
      h('span', { class: 'chip-total', dataset: { testid: `usage-total-${s.code}`, value: s.total } }, `${fmtQty(s.total)}${unit}`),
      h('span', { class: 'chip-events' }, `${s.events} event${s.events === 1 ? '' : 's'}`));
      b.addEventListener('click', () => { chosen = s.code; drawSeries(f); });
      seriesBar.appendChild(b);
    }
    const s = series.find((x) => x.code === chosen);
    const opts = { gran: f.gran, tz: f.tz, unit: s.m.unit, name: s.m.name };
    drawChart(chartWrap, s.rows, opts);
    chartWrap.redraw = () => drawChart(chartWrap, s.rows, opts);

    const unit = s.m.unit || '';
    const note = s.additive ? null : s.m.aggregation === 'unique_count'
      ? 'Distinct counts cannot be added across buckets; the largest bucket is shown.'
      : 'A maximum is not additive; the peak bucket is shown.';
    append(clear(bucketsSlot), [
      h('div', { class: 'buckets-head' }, h('h3', null, `${s.m.name} per ${GRAN[f.gran][1]}`), h('span', { class: 'muted small' }, `${f.tz}`)),
      h('div', { class: 'table-wrap buckets-wrap' }, h('table', { class: 'table buckets-table', dataset: { metric: s.code, gran: f.gran, tz: f.tz, customer: f.customer } },
        h('thead', null, h('tr', null, h('th', null, `Bucket (${f.tz})`), h('th', { class: 'right' }, `Quantity${unit ? ` (${unit})` : ''}`), h('th', { class: 'right' }, 'Events'))),
        h('tbody', null, s.rows.map((r) => h('tr', { class: r.events ? null : 'zero', dataset: { start: isoUtc(r.start) } },
          h('td', { title: `${isoUtc(r.start)} – ${isoUtc(r.end)} UTC` }, bucketRange(r.start, r.end, f.gran, f.tz)),
          h('td', { class: 'num right' }, fmtQty(r.quantity)),
          h('td', { class: 'num right' }, String(r.events))))),
        h('tfoot', null, h('tr', null, h('th', { scope: 'row' }, totalLabel(s)),
          h('td', { class: 'num right', dataset: { testid: 'bucket-total', value: s.total } }, fmtQty(s.total)),
          h('td', { class: 'num right' }, String(s.events)))))),
      note ? h('p', { class: 'muted small buckets-note' }, note) : null]);
  }
  if (typeof ResizeObserver === 'function') {
    let lastW = 0;
    new ResizeObserver(() => {
      const w = Math.floor(chartWrap.clientWidth);
      if (w && w !== lastW && chartWrap.redraw) { lastW = w; chartWrap.redraw(); }
    }).observe(chartWrap);
  }

  // ---- events
  let evSeq = 0;
  let evCursor = null;
  let evShown = 0;
  const propsText = (p) => {
    if (p == null) return '';
    if (typeof p !== 'object') return String(p);
    return Object.entries(p).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`).join(' · ');
  };
  const evRow = (e, f) => h('tr', { dataset: { eventId: e.event_id } },
    h('td', null, h('code', { class: 'ev-id' }, e.event_id)),
    h('td', null, h('div', { class: 'primary-cell' }, customerNames.get(e.customer_id) || e.customer_id),
      customerNames.has(e.customer_id) ? h('div', { class: 'sub-cell' }, e.customer_id) : null),
    h('td', null, h('span', { class: 'badge', title: (metricBy.get(e.metric) || {}).name }, e.metric)),
    h('td', { class: 'num right', dataset: { value: e.quantity } }, fmtQty(e.quantity)),
    h('td', { class: 'nowrap', title: `${e.timestamp} (UTC)${e.received_at ? ` · received ${e.received_at}` : ''}` }, fmtStamp(e.timestamp, f.tz)),
    h('td', { class: 'hide-sm props' }, e.properties && Object.keys(e.properties).length
      ? h('code', { title: JSON.stringify(e.properties) }, propsText(e.properties)) : h('span', { class: 'muted' }, '—')));

  async function loadEvents(f, reset) {
    const my = ++evSeq;
    if (reset) {
      evCursor = null;
      evShown = 0;
      clear(evStatus).appendChild(loading());
      csvLink.href = withOrg(`/v1/usage?${eventsQuery(f, { format: 'csv' })}`);
      evCard.querySelector('.ev-time-head').textContent = `Time (${f.tz})`;
    }
    evMore.disabled = true;
    try {
      const qs = eventsQuery(f, { limit: '25' });
      if (!reset && evCursor) qs.set('cursor', evCursor);
      const res = await api('GET', `/v1/usage?${qs}`);
      if (my !== evSeq) return;
      if (reset) clear(evTbody);
      clear(evStatus);
      for (const e of res.data) evTbody.appendChild(evRow(e, f));
      evShown += res.data.length;
      evCursor = res.next_cursor;
      evFoot.hidden = !evCursor;
      evTable.hidden = evShown === 0;
      evCount.textContent = evShown ? `${evShown}${evCursor ? '+' : ''} event${evShown === 1 && !evCursor ? '' : 's'}` : '';
      if (!evShown) {
        evStatus.appendChild(empty('No events match', f.customer || f.metric
          ? 'No events for this customer and metric in the range.'
          : 'No usage events in this range yet.'));
      }
    } catch (err) {
      if (my !== evSeq) return;
      if (reset) { clear(evTbody); evTable.hidden = true; evFoot.hidden = true; evCount.textContent = ''; }
      clear(evStatus).appendChild(h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' },
        err.status === 422 || err.status === 400 ? `${errorText(err)} — see the filters above.` : errorText(err))));
    } finally {
      evMore.disabled = false;
    }
  }
  evMore.addEventListener('click', () => { if (applied) loadEvents(applied, false); });

  function apply() {
    clearErrors(filters);
    let f;
    try {
      f = readFilters();
    } catch (err) {
      showErrors(filters, err);
      return;
    }
    Object.assign(F, { customer: f.customer, metric: f.metric, gran: f.gran, tz: f.tz, from: f.fromText, to: f.toText });
    applied = f;
    loadAggregates(f);
    loadEvents(f, true);
  }
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); apply(); });
  // A new granularity, or a new zone while the range is still a default one,
  // starts from that granularity's default range in the zone.
  const useDefault = () => {
    const r = defaultRange(granSel.value, tzSel.value);
    fromIn.value = r.from;
    toIn.value = r.to;
    F.custom = false;
    apply();
  };
  granSel.addEventListener('change', () => { setStep(); useDefault(); });
  resetBtn.addEventListener('click', useDefault);
  tzSel.addEventListener('change', () => { if (F.custom) apply(); else useDefault(); });
  for (const el of [fromIn, toIn]) el.addEventListener('change', () => { F.custom = true; apply(); });
  metricSel.addEventListener('change', apply);
  custIn.addEventListener('change', apply);
  // picking a suggestion (or clearing the box) applies at once
  let pickTimer = null;
  custIn.addEventListener('input', () => {
    const v = custIn.value.trim();
    clearTimeout(pickTimer);
    if (!v || customerNames.has(v)) pickTimer = setTimeout(() => { if (custIn.value.trim() !== (applied ? applied.customer : '')) apply(); }, 300);
  });

  // ---- imports
  const refresh = () => { if (applied) { loadAggregates(applied); loadEvents(applied, true); } };
  await drawImports(impCards, canImport, refresh);
  apply();
}

// -- CSV imports -----------------------------------------------------------------

const IMPORT_BADGE = { queued: '', running: 'blue', succeeded: 'green', failed: 'red' };

function uploadImport(file, onError, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', withOrg(`/v1/usage/imports?on_error=${encodeURIComponent(onError)}`));
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
      const err = new ApiError(xhr.status, data, { get: (n) => xhr.getResponseHeader(n) });
      if (xhr.status === 401) sessionLost();
      reject(err);
    };
    xhr.onerror = () => reject(new ApiError(0, null, null, 'Cannot reach Meterline. Check your connection and try again.'));
    const fd = new FormData();
    fd.append('file', file, file.name);
    xhr.send(fd);
  });
}

function fmtBytes(n) {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function importDetail(imp) {
  const done = imp.status === 'succeeded' || imp.status === 'failed';
  const stat = (label, v, key) => h('div', { class: 'imp-stat' }, h('span', { class: 'imp-stat-label' }, label),
    h('span', { class: 'imp-stat-value', dataset: { testid: `import-${key}` } }, v == null ? '—' : String(v)));
  const errors = Array.isArray(imp.errors) ? imp.errors : [];
  return h('div', { class: 'import-detail', dataset: { importId: imp.id, status: imp.status } },
    h('div', { class: 'imp-top' },
      h('div', { class: 'imp-file' }, h('strong', null, imp.filename || 'upload.csv'),
        h('span', { class: 'muted small' }, ` · ${fmtBytes(imp.size_bytes)} · on error: ${imp.on_error || 'abort'}`)),
      h('span', { class: `badge ${IMPORT_BADGE[imp.status] || ''}`, dataset: { testid: 'import-status' } }, imp.status)),
    h('div', { class: 'imp-progress' },
      h('progress', { max: 100, value: done && imp.status === 'succeeded' ? 100 : imp.progress || 0, 'aria-label': 'Import progress' }),
      h('span', { class: 'muted small' }, `${done && imp.status === 'succeeded' ? 100 : imp.progress || 0}%`)),
    h('div', { class: 'imp-stats' },
      stat('Rows', imp.rows, 'rows'), stat('Imported', imp.imported, 'imported'),
      stat('Duplicates', imp.duplicates, 'duplicates'), stat('Rejected', imp.rejected, 'rejected')),
    imp.error ? h('div', { class: 'alert', role: 'alert' }, imp.error) : null,
    errors.length ? h('div', { class: 'imp-errors' },
      h('div', { class: 'small muted' }, imp.rejected > errors.length ? `First ${errors.length} of ${imp.rejected} row errors:` : 'Row errors:'),
      h('ul', null, errors.slice(0, 20).map((e) => h('li', null, h('span', { class: 'line-no' }, `Line ${e.line}`), ' ', e.message))),
      errors.length > 20 ? h('div', { class: 'small muted' }, `… and ${errors.length - 20} more.`) : null) : null);
}

async function drawImports(root, canImport, onImported) {
  const detailSlot = h('div', { class: 'card-body import-live', hidden: true, 'aria-live': 'polite' });
  if (canImport) {
    const fileIn = h('input', { type: 'file', accept: '.csv,text/csv', class: 'file-input', id: nextId('file'), dataset: { field: 'file' } });
    const fileName = h('span', { class: 'drop-file muted' }, 'No file chosen');
    const drop = h('label', { class: 'drop', for: fileIn.id },
      h('span', { class: 'drop-title' }, 'Drop a CSV file here'),
      h('span', { class: 'muted small' }, 'or ', h('span', { class: 'linklike' }, 'choose a file'), ' · up to 1 GB'),
      fileName);
    const pick = () => { const f = fileIn.files && fileIn.files[0]; fileName.textContent = f ? `${f.name} · ${fmtBytes(f.size)}` : 'No file chosen'; drop.classList.toggle('has-file', !!f); };
    fileIn.addEventListener('change', pick);
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer && e.dataTransfer.files.length) { fileIn.files = e.dataTransfer.files; pick(); }
    });
    const radio = (value, title, hint, checked) => h('label', { class: 'check' },
      h('input', { type: 'radio', name: 'on_error', value, checked, dataset: { field: 'on_error' } }),
      h('span', null, h('span', { class: 'check-title' }, title), h('span', { class: 'hint' }, hint)));
    const upBar = h('progress', { max: 100, value: 0, 'aria-label': 'Upload progress' });
    const upText = h('span', { class: 'muted small' });
    const upRow = h('div', { class: 'imp-progress', hidden: true }, upBar, upText);
    const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Upload and import');
    const form = h('form', { 'aria-label': 'Import CSV', class: 'import-form' },
      h('div', { class: 'grid cols-2' },
        h('div', { class: 'field' }, h('label', { class: 'label', for: fileIn.id }, 'CSV file'), fileIn, drop,
          h('div', { class: 'field-error', dataset: { errorFor: 'file' }, hidden: true })),
        h('div', { class: 'field' }, h('span', { class: 'label' }, 'When a row is invalid'),
          radio('abort', 'Abort', 'Import nothing; fix the file and upload it again.', true),
          radio('skip', 'Skip the row', 'Import every valid row and report the rejected ones.', false),
          h('div', { class: 'field-error', dataset: { errorFor: 'on_error' }, hidden: true }))),
      h('details', { class: 'columns-help' }, h('summary', null, 'Expected columns'),
        h('p', { class: 'small' }, 'A header row is required; columns may come in any order and are matched case-insensitively.'),
        h('table', { class: 'table cols-table' }, h('tbody', null,
          [['event_id', 'Your unique ID of the event. An ID already stored is counted once (duplicate).'],
            ['customer_id', 'The customer\'s external ID.'],
            ['event_type or metric', 'The metric code.'],
            ['event_date or timestamp', 'RFC 3339 time, e.g. 2026-10-01T13:00:00Z.'],
            ['quantity', 'Optional decimal; defaults to 1.']].map(([c, d]) => h('tr', null, h('td', null, h('code', null, c)), h('td', null, d))))),
        h('pre', { class: 'csv-sample' }, 'event_id,customer_id,metric,timestamp,quantity\nevt-0001,acme,api_calls,2026-10-01T13:00:00Z,12.5')),
      upRow,
      formAlert(),
      h('div', { class: 'form-actions' }, btn));

    onSubmit(form, btn, 'Uploading…', async () => {
      const file = fileIn.files && fileIn.files[0];
      if (!file) throw new ApiError(422, { error: { message: 'Choose a file.', details: [{ field: 'file', message: 'Choose a CSV file to import.' }] } });
      const onError = form.querySelector('input[name="on_error"]:checked').value;
      upRow.hidden = false;
      upBar.value = 0;
      upText.textContent = 'Uploading…';
      let res;
      try {
        res = await uploadImport(file, onError, (done, total) => {
          const pct = total ? Math.floor((done / total) * 100) : 0;
          upBar.value = pct;
          upText.textContent = `Uploading ${fmtBytes(done)} of ${fmtBytes(total)} (${pct}%)`;
        });
      } finally {
        upRow.hidden = true;
      }
      toast(`“${file.name}” uploaded. Importing…`);
      form.reset();
      pick();
      watch(res.import_id, { filename: file.name, size_bytes: file.size, on_error: onError, status: res.status || 'queued', progress: 0 });
    });

    root.appendChild(h('section', { class: 'card', id: 'usage-import' },
      h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Import CSV'),
        h('p', { class: 'sub' }, 'Load historical or offline usage. Events are stored exactly once, so re-uploading a file is safe.'))),
      h('div', { class: 'card-body' }, form), detailSlot));
  }

  // recent imports
  const tbody = h('tbody');
  const listStatus = h('div', null, loading());
  const table = h('div', { class: 'table-wrap', hidden: true }, h('table', { class: 'table imports-table' },
    h('thead', null, h('tr', null, h('th', null, 'File'), h('th', null, 'Status'), h('th', { class: 'right' }, 'Rows'),
      h('th', { class: 'right' }, 'Imported'), h('th', { class: 'right hide-sm' }, 'Duplicates'), h('th', { class: 'right hide-sm' }, 'Rejected'),
      h('th', { class: 'hide-sm' }, 'Uploaded'))), tbody));
  const more = h('button', { class: 'btn', type: 'button' }, 'Load more');
  const foot = h('div', { class: 'card-foot', hidden: true }, more);
  const listDetail = h('div', { class: 'card-body import-live', hidden: true });
  root.appendChild(h('section', { class: 'card', id: 'usage-imports' },
    h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Recent imports'),
      h('p', { class: 'sub' }, canImport ? 'Select an import to see its row errors.'
        : 'Select an import to see its row errors. Owners, finance and platform admins can import CSV files.'))),
    listDetail, table, listStatus, foot));

  let cursor = null;
  let shown = 0;
  const row = (imp) => {
    const open = () => {
      tbody.querySelectorAll('tr.selected').forEach((t) => t.classList.remove('selected'));
      tr.classList.add('selected');
      clear(listDetail).appendChild(importDetail(imp));
      listDetail.hidden = false;
    };
    const tr = h('tr', { class: 'clickable', tabindex: 0, dataset: { importId: imp.id, status: imp.status }, onclick: open,
      onkeydown: (e) => { if (e.key === 'Enter') open(); } },
    h('td', null, h('div', { class: 'primary-cell' }, imp.filename || 'upload.csv'), h('div', { class: 'sub-cell' }, fmtBytes(imp.size_bytes))),
    h('td', null, h('span', { class: `badge ${IMPORT_BADGE[imp.status] || ''}` }, imp.status)),
    h('td', { class: 'num right' }, dash(imp.rows)),
    h('td', { class: 'num right' }, dash(imp.imported)),
    h('td', { class: 'num right hide-sm' }, dash(imp.duplicates)),
    h('td', { class: 'num right hide-sm' }, dash(imp.rejected)),
    h('td', { class: 'hide-sm nowrap', title: imp.created_at }, fmtStamp(imp.created_at, browserTz())));
    return tr;
  };
  async function loadList(reset) {
    if (reset) { cursor = null; shown = 0; }
    more.disabled = true;
    try {
      const res = await api('GET', `/v1/usage/imports?limit=10${!reset && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (reset) clear(tbody);
      clear(listStatus);
      res.data.forEach((imp) => tbody.appendChild(row(imp)));
      shown += res.data.length;
      cursor = res.next_cursor;
      foot.hidden = !cursor;
      table.hidden = shown === 0;
      if (!shown) listStatus.appendChild(empty('No imports yet', canImport ? 'Upload a CSV file above to import usage in bulk.' : 'CSV imports will appear here.'));
    } catch (err) {
      clear(listStatus).appendChild(h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => loadList(false));

  // Polls one import every second until it succeeds or fails.
  async function watch(id, seed) {
    let imp = { id, ...seed };
    detailSlot.hidden = false;
    clear(detailSlot).appendChild(importDetail(imp));
    loadList(true);
    let misses = 0;
    while (root.isConnected) {
      await sleep(1000);
      if (!root.isConnected) return;
      try {
        imp = await api('GET', `/v1/usage/imports/${encodeURIComponent(id)}`);
        misses = 0;
      } catch (err) {
        if (err.status === 401) return;
        if (++misses >= 5) { detailSlot.appendChild(h('div', { class: 'alert', role: 'alert' }, `Lost track of the import: ${errorText(err)}`)); return; }
        continue;
      }
      clear(detailSlot).appendChild(importDetail(imp));
      if (imp.status === 'succeeded' || imp.status === 'failed') {
        if (imp.status === 'succeeded') toast(`Import finished: ${imp.imported} imported, ${imp.duplicates} duplicates, ${imp.rejected} rejected.`);
        else toast(`Import failed${imp.error ? `: ${imp.error}` : '.'}`, 'error');
        await loadList(true);
        if (imp.imported) onImported();
        return;
      }
    }
  }
  await loadList(true);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// invoices: the list (current / past), generating drafts and billing runs,
// and one invoice with its lines, lifecycle, audit trail and disputes
//
// Amounts are the API's decimal strings shown verbatim (money()); this page
// never adds, rounds or parses money.  Which buttons appear follows the
// API's rules (api/routes.c, db/repo_invoices.c) for the signed-in role and
// the invoice's current state; the server still decides, and its 403/409
// answers are shown as they come.  Periods are [start, end) in UTC.

const INV_STATUS = {
  draft: ['Draft', ''],
  pending_approval: ['Pending approval', 'amber'],
  approved: ['Approved', 'blue'],
  issued: ['Issued', 'blue'],
  paid: ['Paid', 'green'],
  void: ['Void', 'red'],
};
const INV_VIEWS = {
  current: ['Current', ['draft', 'pending_approval', 'approved', 'issued'], 'Drafts, invoices awaiting approval and issued invoices not yet paid.'],
  past: ['Past', ['paid', 'void'], 'Paid and voided invoices.'],
};
const INV_ACTION_LABEL = {
  generate: 'Generated', regenerate: 'Regenerated', submit: 'Submitted for approval', approve: 'Approved',
  reject: 'Rejected', issue: 'Issued', void: 'Voided', mark_paid: 'Marked paid',
  dispute_open: 'Dispute opened', dispute_resolve: 'Dispute resolved',
};
const JOB_DONE = { succeeded: true, dead: true };
const RUN_DONE = { succeeded: true, failed: true };
const RUN_BADGE = { queued: '', running: 'blue', succeeded: 'green', failed: 'red' };

const hasRole = (...roles) => roles.includes(role());
const canBill = () => hasRole('admin', 'owner', 'finance');            // generate, submit, issue, void, mark paid
const canApprove = () => hasRole('admin', 'owner', 'approver');        // approve, reject
const canOpenDispute = () => hasRole('owner', 'finance', 'approver');  // platform admins answer, they do not open
const canReplyDispute = () => hasRole('admin', 'owner', 'finance', 'approver');
const canResolveDispute = () => hasRole('admin', 'owner', 'finance');

// Lifecycle buttons: the states each leaves from and who may press it.
const INV_LIFECYCLE = [
  { path: 'submit', label: 'Submit for approval', from: ['draft'], may: canBill },
  { path: 'approve', label: 'Approve', from: ['pending_approval'], may: canApprove, primary: true },
  { path: 'reject', label: 'Reject', from: ['pending_approval'], may: canApprove, ask: 'reject' },
  { path: 'issue', label: 'Issue invoice', from: ['approved', 'draft'], may: canBill, primary: true,
    when: (inv) => inv.status !== 'draft' || !inv.require_approval },
  { path: 'mark-paid', label: 'Mark paid', from: ['issued'], may: canBill, primary: true },
  { path: 'void', label: 'Void', from: ['draft', 'pending_approval', 'approved', 'issued'], may: canBill, ask: 'void' },
];

function statusBadge(s) {
  const [label, cls] = INV_STATUS[s] || [s, ''];
  return h('span', { class: `badge ${cls}`, dataset: { status: s, testid: 'invoice-status' } }, label);
}

const DAY_MS = 86400000;
const utcMidnight = (d) => !d.getUTCHours() && !d.getUTCMinutes() && !d.getUTCSeconds();
const fmtUtcDay = (ms) => fmtIn(ms, 'UTC', { year: 'numeric', month: 'short', day: 'numeric' });

// [start, end) as people read it: "October 2026", "Oct 1, 2026 – Oct 15, 2026"
// (the last day included), or hours in UTC.
function fmtPeriod(start, end) {
  const a = Date.parse(start);
  const b = Date.parse(end);
  if (Number.isNaN(a) || Number.isNaN(b)) return `${start} – ${end}`;
  const da = new Date(a);
  const db = new Date(b);
  if (utcMidnight(da) && utcMidnight(db)) {
    const months = (db.getUTCFullYear() * 12 + db.getUTCMonth()) - (da.getUTCFullYear() * 12 + da.getUTCMonth());
    if (da.getUTCDate() === 1 && db.getUTCDate() === 1 && months === 1) return fmtIn(a, 'UTC', { month: 'long', year: 'numeric' });
    return b - a === DAY_MS ? fmtUtcDay(a) : `${fmtUtcDay(a)} – ${fmtUtcDay(b - DAY_MS)}`;
  }
  return `${fmtStamp(start, 'UTC')} – ${fmtStamp(end, 'UTC')} UTC`;
}

// "YYYY-MM" of the month before the current one (UTC): what month-end bills.
function prevMonth() {
  const d = new Date();
  const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1));
  return `${m.getUTCFullYear()}-${pad2(m.getUTCMonth() + 1)}`;
}
function monthBounds(ym) {
  const m = /^(\d{4})-(\d{2})$/.exec(ym || '');
  if (!m) return null;
  const next = new Date(Date.UTC(+m[1], +m[2], 1));
  return { start: `${m[1]}-${m[2]}-01`, end: `${next.getUTCFullYear()}-${pad2(next.getUTCMonth() + 1)}-01` };
}

// Polls GET /v1/jobs/{id} until the job succeeded or is dead.
async function waitJob(id, onState, maxMs = 120000) {
  const until = Date.now() + maxMs;
  let misses = 0;
  while (Date.now() < until) {
    let job;
    try {
      job = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
      misses = 0;
    } catch (err) {
      if (err.status === 401 || ++misses >= 5) throw err;
      await sleep(1000);
      continue;
    }
    if (onState) onState(job);
    if (JOB_DONE[job.state]) return job;
    await sleep(400);
  }
  throw new ApiError(0, null, null, 'This is taking longer than expected. The job keeps running; check the list again later.');
}

// A customer input with suggestions (datalist) by name or external ID.
function customerInput(first, value, attrs = {}) {
  const names = new Map(first.data.map((c) => [c.external_id, c.name]));
  const dl = h('datalist', { id: nextId('inv-customers') });
  const fill = (list) => {
    clear(dl);
    for (const c of list) { names.set(c.external_id, c.name); dl.appendChild(h('option', { value: c.external_id }, c.name)); }
  };
  fill(first.data);
  const el = input({ type: 'search', mono: true, list: dl.id, value, autocomplete: 'off', ...attrs });
  const hint = h('span');
  const showHint = () => {
    const v = el.value.trim();
    hint.textContent = !v ? 'Type to search by name or external ID.' : names.has(v) ? names.get(v) : 'External ID of one customer.';
  };
  showHint();
  let timer = null;
  el.addEventListener('input', () => {
    showHint();
    if (!first.next_cursor) return;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = el.value.trim();
      try {
        fill((await api('GET', `/v1/customers?limit=50${q ? `&q=${encodeURIComponent(q)}` : ''}`)).data);
        showHint();
      } catch { /* keep the old suggestions */ }
    }, 250);
  });
  return { el, dl, hint, names };
}

// ---- the list ---------------------------------------------------------------

async function pageInvoices(page) {
  if (!state.invoices) state.invoices = { view: 'current', customer: '', status: '', period: '' };
  const F = state.invoices;
  const genBtn = canBill() ? h('button', { class: 'btn primary', type: 'button', 'aria-expanded': 'false' }, h('span', { class: 'plus' }, '+'), 'Generate invoice') : null;
  const runBtn = canBill() ? h('button', { class: 'btn', type: 'button', 'aria-expanded': 'false' }, 'Run billing for a month') : null;
  page.appendChild(pageHead('Invoices', 'Drafts generated from metered usage, their approval, and issued and paid invoices.', [runBtn, genBtn]));
  const panel = h('section', { class: 'card form-card', hidden: true, id: 'invoice-panel' });
  page.appendChild(panel);
  const first = await api('GET', '/v1/customers?limit=200');

  // ---- view tabs, filters
  const listId = nextId('inv-list');
  const tabs = Object.entries(INV_VIEWS).map(([key, [label]]) => h('button', {
    class: 'tab', type: 'button', role: 'tab', id: `inv-tab-${key}`, 'aria-controls': listId, dataset: { view: key },
  }, label));
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Invoice views' }, tabs);
  tablist.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft')) return;
    e.preventDefault();
    const t = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    t.focus();
    t.click();
  });
  const viewNote = h('p', { class: 'muted small view-note' });

  const cust = customerInput(first, F.customer, { placeholder: 'All customers' });
  const statusSel = select([], '');
  const monthIn = input({ type: 'month', value: F.period });
  const resetBtn = h('button', { class: 'btn sm ghost', type: 'button' }, 'Clear filters');
  const filters = h('form', { class: 'inv-filters', 'aria-label': 'Invoice filters' },
    field({ label: 'Customer', name: 'customer_id', control: cust.el, hint: cust.hint }),
    field({ label: 'Status', name: 'status', control: statusSel }),
    field({ label: 'Period (month)', name: 'period', control: monthIn, hint: 'Invoices whose period starts in this month (UTC).' }),
    h('div', { class: 'inv-filter-reset' }, resetBtn),
    cust.dl);
  filters.noValidate = true;
  filters.addEventListener('submit', (e) => { e.preventDefault(); load(true); });

  const countEl = h('span', { class: 'count' });
  const tbody = h('tbody');
  const table = h('div', { class: 'table-wrap', hidden: true }, h('table', { class: 'table invoices-table' },
    h('caption', { class: 'sr-only' }, 'Invoices'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Invoice'), h('th', { scope: 'col' }, 'Customer'),
      h('th', { scope: 'col' }, 'Period'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'right' }, 'Total'),
      h('th', { scope: 'col', class: 'hide-sm' }, 'Date'))),
    tbody));
  const status = h('div');
  const more = h('button', { class: 'btn', type: 'button' }, 'Load more');
  const foot = h('div', { class: 'card-foot', hidden: true }, more);
  page.appendChild(h('section', { class: 'card', id: 'invoices' },
    h('div', { class: 'card-head tabs-head' }, tablist, countEl),
    h('div', { id: listId, role: 'tabpanel' },
      h('div', { class: 'card-body inv-filter-body' }, viewNote, filters), table, status, foot)));

  const drawTabs = () => {
    for (const t of tabs) {
      const on = t.dataset.view === F.view;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      t.classList.toggle('on', on);
    }
    const [, states, note] = INV_VIEWS[F.view];
    if (!states.includes(F.status)) F.status = '';
    clear(statusSel);
    for (const [v, l] of [['', 'All statuses'], ...states.map((s) => [s, INV_STATUS[s][0]])]) {
      statusSel.appendChild(h('option', { value: v, selected: v === F.status }, l));
    }
    statusSel.value = F.status;
    viewNote.textContent = note;
  };
  for (const t of tabs) t.addEventListener('click', () => { if (F.view !== t.dataset.view) { F.view = t.dataset.view; drawTabs(); load(true); } });
  statusSel.addEventListener('change', () => { F.status = statusSel.value; load(true); });
  monthIn.addEventListener('change', () => { F.period = monthIn.value; load(true); });
  let custTimer = null;
  cust.el.addEventListener('input', () => {
    clearTimeout(custTimer);
    const v = cust.el.value.trim();
    // a known external ID (picked from the suggestions) applies at once
    custTimer = setTimeout(() => { if (F.customer !== v) { F.customer = v; load(true); } }, cust.names.has(v) || !v ? 0 : 500);
  });
  resetBtn.addEventListener('click', () => {
    F.customer = ''; F.status = ''; F.period = '';
    cust.el.value = ''; monthIn.value = ''; statusSel.value = '';
    load(true);
  });

  let cursor = null;
  let seq = 0;
  let shown = 0;
  const open = (inv) => { location.hash = `#/invoices/${encodeURIComponent(inv.id)}`; };
  const row = (inv) => h('tr', { class: 'clickable', tabindex: 0, dataset: { invoiceId: inv.id, status: inv.status },
    onclick: () => open(inv), onkeydown: (e) => { if (e.key === 'Enter') open(inv); } },
  h('td', null, inv.number
    ? h('div', { class: 'primary-cell mono' }, h('a', { href: `#/invoices/${encodeURIComponent(inv.id)}` }, inv.number))
    : h('div', { class: 'primary-cell' }, h('a', { href: `#/invoices/${encodeURIComponent(inv.id)}`, class: 'muted' }, 'Not issued')),
  inv.organization && isAdmin() && !state.org ? h('div', { class: 'sub-cell' }, inv.organization) : null),
  h('td', null, h('div', { class: 'primary-cell' }, inv.customer ? inv.customer.name : '—'), h('div', { class: 'sub-cell' }, inv.customer ? inv.customer.id : '')),
  h('td', { class: 'nowrap' }, fmtPeriod(inv.period_start, inv.period_end)),
  h('td', null, statusBadge(inv.status)),
  h('td', { class: 'num right', dataset: { value: inv.total } }, money(inv.total, inv.currency)),
  h('td', { class: 'hide-sm nowrap muted' }, inv.paid_at ? `Paid ${fmtDate(inv.paid_at)}` : inv.voided_at ? `Voided ${fmtDate(inv.voided_at)}`
    : inv.issued_at ? `Issued ${fmtDate(inv.issued_at)}` : `Generated ${fmtDate(inv.generated_at)}`));

  async function load(reset) {
    const my = ++seq;
    if (reset) {
      cursor = null;
      shown = 0;
      clear(status).appendChild(loading());
      table.classList.add('stale');
    }
    more.disabled = true;
    const qs = new URLSearchParams({ view: F.view, limit: '25' });
    if (F.status) qs.set('status', F.status);
    if (F.customer) qs.set('customer_id', F.customer);
    if (F.period) qs.set('period', F.period);
    if (!reset && cursor) qs.set('cursor', cursor);
    try {
      const res = await api('GET', `/v1/invoices?${qs}`);
      if (my !== seq) return;
      if (reset) clear(tbody);
      clear(status);
      table.classList.remove('stale');
      clearErrors(filters);
      for (const inv of res.data) tbody.appendChild(row(inv));
      shown += res.data.length;
      cursor = res.next_cursor;
      foot.hidden = !cursor;
      table.hidden = shown === 0;
      countEl.textContent = `${shown}${cursor ? '+' : ''} invoice${shown === 1 && !cursor ? '' : 's'}`;
      if (!shown) {
        const filtered = F.customer || F.status || F.period;
        status.appendChild(filtered
          ? empty('No invoices match', 'Try another customer, status or month, or clear the filters.')
          : empty(F.view === 'current' ? 'No open invoices' : 'No past invoices',
            F.view === 'current'
              ? (canBill() ? 'Generate an invoice for a customer, or run billing for a whole month.' : 'Drafts appear here once finance generates them.')
              : 'Paid and voided invoices appear here.'));
      }
    } catch (err) {
      if (my !== seq) return;
      clear(status);
      table.classList.remove('stale');
      if (err.status === 422 || err.status === 400) showErrors(filters, err);
      else status.appendChild(h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => load(false));

  // ---- generate / billing run panel (finance, owners, platform admins)
  let panelKind = null;
  const closePanel = () => {
    panelKind = null;
    panel.hidden = true;
    clear(panel);
    for (const b of [genBtn, runBtn]) if (b) b.setAttribute('aria-expanded', 'false');
  };
  const openPanel = (kind) => {
    if (panelKind === kind) { closePanel(); return; }
    panelKind = kind;
    genBtn.setAttribute('aria-expanded', String(kind === 'generate'));
    runBtn.setAttribute('aria-expanded', String(kind === 'run'));
    clear(panel);
    if (kind === 'generate') generatePanel(panel, first, closePanel, () => load(true));
    else runPanel(panel, closePanel, () => load(true));
    panel.hidden = false;
    const f = panel.querySelector('input, select');
    if (f) f.focus();
  };
  if (genBtn) genBtn.addEventListener('click', () => openPanel('generate'));
  if (runBtn) runBtn.addEventListener('click', () => openPanel('run'));

  drawTabs();
  await load(true);
}

function generatePanel(panel, first, onClose, onChanged) {
  const cust = customerInput(first, '', { placeholder: 'site-00042', required: true });
  const monthIn = input({ type: 'month', value: prevMonth(), required: true });
  const fromIn = input({ type: 'date' });
  const toIn = input({ type: 'date' });
  const custom = h('input', { type: 'checkbox', id: nextId('custom') });
  const monthField = field({ label: 'Month', name: 'period', required: true, control: monthIn, hint: 'A calendar month in UTC.' });
  const fromField = field({ label: 'From', name: 'period_start', required: true, control: fromIn, hint: 'First day included (UTC).' });
  const toField = field({ label: 'To (exclusive)', name: 'period_end', required: true, control: toIn, hint: 'The first day not included.' });
  const drawMode = () => {
    monthField.hidden = custom.checked;
    fromField.hidden = !custom.checked;
    toField.hidden = !custom.checked;
    if (custom.checked && !fromIn.value) {
      const b = monthBounds(monthIn.value || prevMonth());
      fromIn.value = b.start;
      toIn.value = b.end;
    }
  };
  custom.addEventListener('change', drawMode);
  const live = h('div', { class: 'gen-live', 'aria-live': 'polite' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Generate draft');
  const form = h('form', { 'aria-label': 'Generate invoice' },
    h('div', { class: 'grid cols-3' },
      field({ label: 'Customer', name: 'customer_id', required: true, control: cust.el, hint: cust.hint }),
      monthField, fromField, toField,
      h('div', { class: 'field custom-period' }, h('label', { class: 'check', for: custom.id }, custom,
        h('span', null, h('span', { class: 'check-title' }, 'Custom period'), h('span', { class: 'hint' }, 'Any range of whole days instead of a month.'))))),
    cust.dl,
    formAlert(),
    live,
    h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: onClose }, 'Close'), btn));
  drawMode();

  onSubmit(form, btn, 'Generating…', async () => {
    const body = { customer_id: cust.el.value.trim() };
    const errs = [];
    if (!body.customer_id) errs.push({ field: 'customer_id', message: 'Choose the customer to bill.' });
    if (custom.checked) {
      body.period_start = fromIn.value;
      body.period_end = toIn.value;
      if (!body.period_start) errs.push({ field: 'period_start', message: 'Pick the first day.' });
      if (!body.period_end) errs.push({ field: 'period_end', message: 'Pick the day after the last one.' });
    } else {
      const b = monthBounds(monthIn.value);
      if (!b) errs.push({ field: 'period', message: 'Pick a month.' });
      else { body.period_start = b.start; body.period_end = b.end; }
    }
    if (errs.length) throw new ApiError(422, { error: { message: 'Check the fields.', details: errs } });
    clear(live);
    const res = await api('POST', '/v1/invoices', body);
    const note = h('p', { class: 'muted small', role: 'status' }, 'Queued…');
    live.appendChild(h('div', { class: 'gen-status' }, note));
    const job = await waitJob(res.job_id, (j) => {
      note.textContent = j.state === 'queued' ? 'Queued…' : j.state === 'delayed' ? `Retrying (attempt ${j.attempts})…` : 'Generating…';
    });
    clear(live);
    if (job.state !== 'succeeded') {
      live.appendChild(h('div', { class: 'alert', role: 'alert', dataset: { testid: 'generate-result' } },
        `The invoice could not be generated: ${job.error || 'the job failed'}.`));
      return;
    }
    const r = job.result || {};
    const what = {
      created: 'Draft created', updated: 'Draft refreshed with the latest usage', unchanged: 'Already up to date — nothing changed',
      locked: 'This period is already issued; it was left as it is',
    }[r.outcome] || 'Done';
    live.appendChild(h('div', { class: 'alert success', role: 'status', dataset: { testid: 'generate-result', invoiceId: r.invoice_id || '' } },
      h('strong', null, what), ` · ${INV_STATUS[r.status] ? INV_STATUS[r.status][0] : r.status} · total `,
      h('span', { class: 'mono' }, money(r.total, r.currency)), ' · ',
      r.invoice_id ? h('a', { href: `#/invoices/${encodeURIComponent(r.invoice_id)}` }, 'Open invoice →') : null));
    onChanged();
  }, (err) => (err.status === 422 && err.details.length ? null : errorText(err)));
  panel.append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Generate invoice'),
    h('p', { class: 'sub' }, 'Prices the customer\'s usage of the period with their plan. Running it again refreshes the draft; an issued invoice is never changed.'))),
  h('div', { class: 'card-body' }, form));
}

function runDetail(run) {
  const total = run.total == null ? null : Number(run.total);
  const finished = (run.done || 0) + (run.failed || 0);
  const pct = run.status === 'succeeded' ? 100 : total ? Math.floor((finished / total) * 100) : run.progress || 0;
  const stat = (label, v, key) => h('div', { class: 'imp-stat' }, h('span', { class: 'imp-stat-label' }, label),
    h('span', { class: 'imp-stat-value', dataset: { testid: `run-${key}` } }, v == null ? '—' : String(v)));
  const failures = Array.isArray(run.failures) ? run.failures : [];
  return h('div', { class: 'import-detail run-detail', dataset: { runId: run.id, status: run.status } },
    h('div', { class: 'imp-top' },
      h('div', null, h('strong', null, `Billing run · ${run.period}`),
        h('span', { class: 'muted small' }, ` · started by ${run.created_by || '—'} · ${fmtStamp(run.created_at, browserTz())}`)),
      h('span', { class: `badge ${RUN_BADGE[run.status] || ''}`, dataset: { testid: 'run-status' } }, run.status)),
    h('div', { class: 'imp-progress' },
      h('progress', { max: 100, value: pct, 'aria-label': 'Billing run progress' }),
      h('span', { class: 'muted small', dataset: { testid: 'run-progress' } }, total == null ? 'Counting customers…' : `${finished} of ${total} customers`)),
    h('div', { class: 'imp-stats' },
      stat('Customers', run.total, 'total'), stat('Done', run.done, 'done'),
      stat('Failed', run.failed, 'failed'), stat('Skipped (no plan)', run.skipped, 'skipped')),
    run.error ? h('div', { class: 'alert', role: 'alert' }, run.error) : null,
    failures.length ? h('div', { class: 'imp-errors' }, h('div', { class: 'small muted' }, 'Failed customers:'),
      h('ul', null, failures.map((f) => h('li', null, h('code', null, f.customer_id), ' ', f.error || '')))) : null);
}

function runPanel(panel, onClose, onChanged) {
  const monthIn = input({ type: 'month', value: prevMonth(), required: true });
  const live = h('div', { class: 'run-live', 'aria-live': 'polite' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Start billing run');
  const recent = h('div', { class: 'run-recent' });
  const form = h('form', { 'aria-label': 'Run billing' },
    h('div', { class: 'grid cols-3' },
      field({ label: 'Month', name: 'period', required: true, control: monthIn,
        hint: 'Creates or refreshes a draft for every customer with a plan. Issued invoices are left alone.' })),
    formAlert(),
    live,
    h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: onClose }, 'Close'), btn));

  async function watch(run) {
    clear(live).appendChild(runDetail(run));
    while (panel.isConnected && !RUN_DONE[run.status]) {
      await sleep(1000);
      if (!panel.isConnected) return run;
      try {
        run = await api('GET', `/v1/billing-runs/${encodeURIComponent(run.id)}`);
      } catch (err) {
        if (err.status === 401) return run;
        continue;
      }
      clear(live).appendChild(runDetail(run));
    }
    return run;
  }

  onSubmit(form, btn, 'Running…', async () => {
    if (!monthIn.value) throw new ApiError(422, { error: { message: 'Pick a month.', details: [{ field: 'period', message: 'Pick the month to bill.' }] } });
    clear(live);
    const meta = {};
    const started = await api('POST', '/v1/billing-runs', { period: monthIn.value }, { meta });
    // 202: a new run; 200: the month's run that is still going
    if (meta.status === 200) toast(`A billing run for ${started.period} is already in progress; showing it.`);
    const run = await watch(started);
    if (run.status === 'succeeded') toast(`Billing run ${run.period} finished: ${run.done} done, ${run.failed} failed.`);
    else if (run.status === 'failed') toast(`Billing run ${run.period} failed${run.error ? `: ${run.error}` : '.'}`, 'error');
    onChanged();
    drawRecent();
  });

  async function drawRecent() {
    try {
      const res = await api('GET', '/v1/billing-runs?limit=5');
      clear(recent);
      if (!res.data.length) return;
      recent.appendChild(h('h3', { class: 'runs-title' }, 'Recent billing runs'));
      recent.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'table runs-table' },
        h('caption', { class: 'sr-only' }, 'Recent billing runs'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Month'), h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col', class: 'right' }, 'Done'), h('th', { scope: 'col', class: 'right' }, 'Failed'),
          h('th', { scope: 'col', class: 'hide-sm' }, 'Started'))),
        h('tbody', null, res.data.map((r) => {
          const show = async () => {
            try { watch(await api('GET', `/v1/billing-runs/${encodeURIComponent(r.id)}`)); } catch (err) { toast(errorText(err), 'error'); }
          };
          return h('tr', { class: 'clickable', tabindex: 0, dataset: { runId: r.id }, onclick: show, onkeydown: (e) => { if (e.key === 'Enter') show(); } },
            h('td', { class: 'mono' }, r.period),
            h('td', null, h('span', { class: `badge ${RUN_BADGE[r.status] || ''}` }, r.status)),
            h('td', { class: 'num right' }, r.total == null ? `${r.done}` : `${r.done} / ${r.total}`),
            h('td', { class: 'num right' }, String(r.failed)),
            h('td', { class: 'hide-sm nowrap' }, fmtStamp(r.created_at, browserTz())));
        })))));
    } catch { /* the form still works without the history */ }
  }

  panel.append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Run billing for a month'),
    h('p', { class: 'sub' }, 'One draft per customer, generated in the background. You can leave this page; the run continues.'))),
  h('div', { class: 'card-body' }, form), recent);
  drawRecent();
}

// ---- one invoice ------------------------------------------------------------

const SUB_LABEL = { day: ['day', 'days'], tier: ['tier', 'tiers'] };

function invoiceLineRows(line, inv, idx) {
  const cur = inv.currency;
  const subs = line.sub_lines || [];
  const subId = `inv-sub-${idx}`;
  const kindOf = subs.length ? subs[0].kind : null;
  let toggle = null;
  const subBody = subs.length ? h('tbody', { class: 'sub-lines', id: subId, hidden: kindOf !== 'tier', dataset: { line: String(idx) } },
    subs.map((s) => h('tr', { class: 'sub-line', dataset: { kind: s.kind } },
      h('td', { class: 'sub-desc' }, s.kind === 'day' && s.day ? fmtUtcDay(Date.parse(`${s.day}T00:00:00Z`)) : s.description,
        s.flat_fee && /[1-9]/.test(s.flat_fee) ? h('span', { class: 'muted small' }, ` · flat fee ${money(s.flat_fee, cur)}`) : null),
      h('td', { class: 'num right', dataset: { value: s.quantity } }, s.quantity == null ? '—' : fmtQty(s.quantity)),
      h('td', { class: 'num right hide-sm' }, s.unit_price == null ? '' : money(s.unit_price, cur)),
      h('td', { class: 'num right', dataset: { value: s.amount == null ? '' : s.amount } }, s.amount == null ? '' : money(s.amount, cur))))) : null;
  if (subs.length) {
    const [one, many] = SUB_LABEL[kindOf] || ['row', 'rows'];
    const label = `${subs.length} ${subs.length === 1 ? one : many}`;
    toggle = h('button', { class: 'sub-toggle', type: 'button', 'aria-expanded': String(!subBody.hidden), 'aria-controls': subId,
      'aria-label': `${subBody.hidden ? 'Show' : 'Hide'} ${label} of ${line.description}` },
    h('span', { class: 'caret', 'aria-hidden': 'true' }, '▸'), label);
    toggle.addEventListener('click', () => {
      subBody.hidden = !subBody.hidden;
      toggle.setAttribute('aria-expanded', String(!subBody.hidden));
      toggle.setAttribute('aria-label', `${subBody.hidden ? 'Show' : 'Hide'} ${label} of ${line.description}`);
    });
  }
  const extra = [];
  if (line.metric) extra.push(h('span', { class: 'mono' }, line.metric));
  if (line.model) extra.push(h('span', { class: 'badge' }, line.model));
  if (line.kind === 'adjustment') {
    extra.push(h('span', null, 'Adjusts ',
      line.source_invoice ? h('a', { href: `#/invoices/${encodeURIComponent(line.source_invoice.id)}` }, line.source_invoice.number || 'an earlier invoice') : 'an earlier invoice',
      line.adjusted_from != null ? ` · billed ${fmtQty(line.adjusted_from)} → ${fmtQty(line.adjusted_to)}` : ''));
  }
  const billable = line.billable_quantity != null && line.quantity != null && line.billable_quantity !== line.quantity;
  const main = h('tbody', { class: 'line' }, h('tr', { class: `inv-line kind-${line.kind}`, dataset: { kind: line.kind, position: String(line.position) } },
    h('td', null,
      h('div', { class: 'line-desc' }, h('span', { class: 'primary-cell' }, line.description), line.kind === 'minimum' || line.kind === 'adjustment' ? h('span', { class: 'badge kind' }, line.kind) : null),
      extra.length || toggle ? h('div', { class: 'line-meta' }, extra, toggle) : null),
    h('td', { class: 'num right', dataset: { value: line.quantity == null ? '' : line.quantity } },
      line.quantity == null ? '' : fmtQty(line.quantity),
      billable ? h('div', { class: 'muted small' }, `${fmtQty(line.billable_quantity)} billable`) : null),
    h('td', { class: 'num right hide-sm' }, line.unit_price == null ? (subs.length && kindOf === 'tier' ? h('span', { class: 'muted' }, 'tiered') : '') : money(line.unit_price, cur)),
    h('td', { class: 'num right amount', dataset: { value: line.amount }, title: line.amount_exact && line.amount_exact !== line.amount ? `Exact ${line.amount_exact}, rounded once to ${line.amount}` : null },
      money(line.amount, cur))));
  return [main, subBody];
}

async function pageInvoice(page, id) {
  const crumbTail = h('span', null, '…');
  const crumb = h('div', { class: 'crumb' }, h('a', { href: '#/invoices' }, 'Invoices'), ' / ', crumbTail);
  page.appendChild(loading());
  let inv;
  try {
    inv = await api('GET', `/v1/invoices/${encodeURIComponent(id)}`);
  } catch (err) {
    crumbTail.textContent = id;
    clear(page).append(pageHead('Invoice not found', null, null, crumb),
      h('div', { class: 'alert', role: 'alert' }, err.status === 404 ? 'There is no such invoice in this organization.' : errorText(err)));
    return;
  }
  const head = h('div');
  const actions = h('section', { class: 'card inv-actions', id: 'invoice-actions', 'aria-label': 'Invoice actions' });
  const details = h('section', { class: 'card', id: 'invoice-details' });
  const lines = h('section', { class: 'card', id: 'invoice-lines' });
  const late = h('section', { class: 'card late-card', id: 'invoice-late', hidden: true });
  const trail = h('section', { class: 'card', id: 'invoice-trail' });
  const disputes = h('section', { class: 'card', id: 'invoice-disputes' });
  clear(page).append(head, actions, details, lines, late, disputes, trail);
  // the PDF: kept across redraws of the header (its checks run on their own)
  const pdfSlot = h('div', { class: 'inv-pdf', 'aria-live': 'polite', dataset: { testid: 'invoice-pdf' } });
  const drawPdf = invoicePdf(pdfSlot, () => inv);

  const title = () => (inv.number ? `Invoice ${inv.number}` : inv.status === 'void' ? 'Void draft' : 'Draft invoice');
  function drawHead() {
    crumbTail.textContent = inv.number || 'Draft';
    const ph = pageHead(title(), `${inv.customer ? inv.customer.name : ''} · ${fmtPeriod(inv.period_start, inv.period_end)}`, [pdfSlot], crumb);
    ph.querySelector('h1').append(' ', statusBadge(inv.status));
    ph.querySelector('h1').classList.add('inv-title');
    clear(head).appendChild(ph);
    drawPdf();
  }

  function drawDetails() {
    const dd = (label, v, testid) => [h('dt', null, label), h('dd', { dataset: testid ? { testid } : null }, v)];
    const open = inv.disputes ? inv.disputes.open : 0;
    clear(details).append(h('div', { class: 'card-head' }, h('h2', null, 'Details'),
      open ? h('a', { class: 'badge amber', href: '#invoice-disputes' }, `${open} open dispute${open === 1 ? '' : 's'}`) : null),
    h('div', { class: 'card-body inv-summary' },
      h('dl', { class: 'kv' },
        dd('Number', inv.number ? h('span', { class: 'mono' }, inv.number) : h('span', { class: 'muted' }, 'Assigned when issued'), 'invoice-number'),
        dd('Customer', inv.customer ? [h('a', { href: `#/customers/${encodeURIComponent(inv.customer.id)}` }, inv.customer.name), ' ',
          h('span', { class: 'muted mono small' }, inv.customer.id)] : '—'),
        dd('Period', [fmtPeriod(inv.period_start, inv.period_end), h('div', { class: 'muted small mono' }, `${inv.period_start} – ${inv.period_end} (end exclusive)`)]),
        dd('Status', statusBadge(inv.status)),
        inv.require_approval ? dd('Approval', 'Required before issue') : null,
        dd('Generated', `${fmtStamp(inv.generated_at, browserTz())}${inv.version > 1 ? ` · version ${inv.version}` : ''}`),
        inv.issued_at ? dd('Issued', fmtStamp(inv.issued_at, browserTz())) : null,
        inv.paid_at ? dd('Paid', fmtStamp(inv.paid_at, browserTz())) : null,
        inv.voided_at ? dd('Voided', fmtStamp(inv.voided_at, browserTz())) : null,
        inv.notes ? dd('Notes', inv.notes) : null),
      h('div', { class: 'amount-due' },
        h('span', { class: 'stat-label' }, inv.status === 'paid' ? 'Total (paid)' : 'Total'),
        h('span', { class: 'amount-value mono', dataset: { testid: 'invoice-total-head', value: inv.total } }, money(inv.total, inv.currency)))));
  }

  function drawLines() {
    const body = [];
    const items = (inv.lines || []).filter((l) => l.kind !== 'tax');
    const taxLine = (inv.lines || []).find((l) => l.kind === 'tax');
    items.forEach((l, i) => body.push(...invoiceLineRows(l, inv, i)));
    const anyDays = items.some((l) => (l.sub_lines || []).some((s) => s.kind === 'day'));
    const expandAll = anyDays ? h('button', { class: 'btn sm', type: 'button' }, 'Show daily usage') : null;
    if (expandAll) {
      expandAll.addEventListener('click', () => {
        const toggles = [...lines.querySelectorAll('.sub-toggle')].filter((t) => document.getElementById(t.getAttribute('aria-controls')).querySelector('[data-kind="day"]'));
        const show = toggles.some((t) => t.getAttribute('aria-expanded') === 'false');
        for (const t of toggles) if ((t.getAttribute('aria-expanded') === 'false') === show) t.click();
        expandAll.textContent = show ? 'Hide daily usage' : 'Show daily usage';
      });
    }
    const cur = inv.currency;
    clear(lines).append(h('div', { class: 'card-head' },
      h('div', null, h('h2', null, 'Lines'), h('p', { class: 'sub' }, `Amounts in ${cur}, each rounded once to the currency's minor unit.`)), expandAll),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table lines-table' },
      h('caption', { class: 'sr-only' }, 'Invoice lines'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Description'), h('th', { scope: 'col', class: 'right' }, 'Quantity'),
        h('th', { scope: 'col', class: 'right hide-sm' }, 'Unit price'), h('th', { scope: 'col', class: 'right' }, 'Amount'))),
      body.filter(Boolean),
      h('tfoot', null, [['Subtotal', 'subtotal'], [taxLine ? taxLine.description : 'Tax', 'tax'], ['Total', 'total']].map(([label, k]) => h('tr', { class: k === 'total' ? 'grand' : null },
        h('th', { scope: 'row', colspan: 2 }, label), h('td', { class: 'hide-sm', 'aria-hidden': 'true' }),
        h('td', { class: 'num right', dataset: { testid: `invoice-${k}`, value: inv[k] } }, money(inv[k], cur))))))));
    if (!items.length) lines.appendChild(empty('No lines', 'This invoice has no lines.'));
  }

  function drawLate() {
    const rows = inv.late_usage || [];
    late.hidden = !rows.length;
    if (!rows.length) { clear(late); return; }
    clear(late).append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Late usage'),
      h('p', { class: 'sub' }, 'Usage that arrived after this invoice was issued. It is billed as an adjustment on the customer\'s next invoice.'))),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table late-table' },
      h('caption', { class: 'sr-only' }, 'Late usage'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Metric'), h('th', { scope: 'col', class: 'right' }, 'Billed'),
        h('th', { scope: 'col', class: 'right' }, 'Now'), h('th', { scope: 'col', class: 'right' }, 'Late'),
        h('th', { scope: 'col', class: 'right' }, 'Not billed yet'), h('th', { scope: 'col' }, 'Adjusted on'))),
      h('tbody', null, rows.map((r) => h('tr', { dataset: { metric: r.metric } },
        h('td', { class: 'mono' }, r.metric),
        h('td', { class: 'num right' }, fmtQty(r.billed_quantity)),
        h('td', { class: 'num right' }, fmtQty(r.current_quantity)),
        h('td', { class: 'num right late-qty', dataset: { value: r.late_quantity } }, fmtQty(r.late_quantity)),
        h('td', { class: 'num right', dataset: { value: r.unbilled_quantity } }, fmtQty(r.unbilled_quantity)),
        h('td', null, (r.adjusted_on || []).length
          ? (r.adjusted_on || []).map((a, i) => [i ? ', ' : '', h('a', { href: `#/invoices/${encodeURIComponent(a.id)}` }, a.number || 'Unissued invoice'), ' ', statusBadge(a.status)])
          : h('span', { class: 'muted' }, 'Not billed yet'))))))));
  }

  // ---- lifecycle
  let ask = null;  // the open confirmation: 'reject' | 'void'
  let problem = null;  // the last refused action, shown until the next one
  async function act(a, comment) {
    const body = comment ? { comment } : {};
    try {
      inv = await api('POST', `/v1/invoices/${encodeURIComponent(inv.id)}/${a.path}`, body);
      problem = null;
      ask = null;
      toast(a.path === 'issue' ? `Invoice ${inv.number} issued.` : `Invoice ${INV_STATUS[inv.status] ? INV_STATUS[inv.status][0].toLowerCase() : inv.status}.`);
    } catch (err) {
      if (err.status === 422 && a.ask) throw err; // lands on the comment field
      if (err.status === 401) return;
      problem = err.status === 409
        ? `${err.message}. The invoice changed since this page was loaded; it now shows its current state.`
        : errorText(err);
      ask = null;
      try { inv = await api('GET', `/v1/invoices/${encodeURIComponent(inv.id)}`); } catch { /* keep what we have */ }
    }
    redraw();
    loadTrail();
  }

  function askForm(a) {
    const isReject = a.ask === 'reject';
    const ta = h('textarea', { class: 'input textarea', rows: 3, required: isReject, maxlength: 4000,
      placeholder: isReject ? 'What needs to change before this can be approved?' : 'Optional: why it is voided.' });
    const go = h('button', { class: `btn ${isReject ? 'primary' : 'danger solid'}`, type: 'submit' }, isReject ? 'Reject invoice' : 'Void invoice');
    const form = h('form', { class: 'ask-form', 'aria-label': isReject ? 'Reject invoice' : 'Void invoice' },
      isReject ? null : h('div', { class: 'alert warn', role: 'note' }, inv.number
        ? `Voiding ${inv.number} cancels it for good: it cannot be paid or reopened, and its number stays used.`
        : 'Voiding this draft cancels it for good. Generating the period again creates a new draft.'),
      field({ label: isReject ? 'Reason (required)' : 'Comment', name: 'comment', required: isReject, control: ta,
        hint: isReject ? 'Sent back with the invoice to draft; it is kept in the audit trail.' : 'Kept in the audit trail.' }),
      formAlert(),
      h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', onclick: () => { ask = null; drawActions(); } }, isReject ? 'Cancel' : 'Keep invoice'), go));
    onSubmit(form, go, isReject ? 'Rejecting…' : 'Voiding…', async () => {
      const comment = ta.value.trim();
      if (isReject && !comment) throw new ApiError(422, { error: { message: 'A comment is required.', details: [{ field: 'comment', message: 'Say why the invoice is rejected.' }] } });
      await act(a, comment || null);
    });
    return form;
  }

  function drawActions() {
    const allowed = INV_LIFECYCLE.filter((a) => a.from.includes(inv.status) && a.may() && (!a.when || a.when(inv)));
    const notes = [];
    if (inv.status === 'draft' && inv.require_approval && canBill()) notes.push('This customer requires approval: submit the draft, then an approver approves it before it can be issued.');
    if (inv.status === 'pending_approval' && !canApprove() && canBill()) notes.push('Waiting for an approver.');
    if (inv.status === 'approved' && !canBill()) notes.push('Approved; finance issues it.');
    clear(actions);
    if (!allowed.length) {
      const why = hasRole('viewer') ? 'You have read-only access to invoices.'
        : inv.status === 'paid' ? 'This invoice is paid. Nothing more to do.'
          : inv.status === 'void' ? 'This invoice is void.'
            : `Your role (${ROLE_LABEL[role()] || role()}) has no action on an invoice that is ${(INV_STATUS[inv.status] || [inv.status])[0].toLowerCase()}.`;
      actions.appendChild(h('div', { class: 'card-body inv-actions-body' }, h('p', { class: 'muted', dataset: { testid: 'no-actions' } }, why),
        notes.map((n) => h('p', { class: 'muted small' }, n))));
    } else {
      const bar = h('div', { class: 'inv-buttons', role: 'group', 'aria-label': 'Invoice lifecycle' });
      for (const a of allowed) {
        const b = h('button', { class: `btn ${a.ask === 'void' ? 'danger' : a.primary ? 'primary' : ''}`, type: 'button',
          dataset: { action: a.path }, 'aria-expanded': a.ask ? String(ask === a.path) : null }, a.label);
        b.addEventListener('click', async () => {
          if (a.ask) { ask = ask === a.path ? null : a.path; drawActions(); return; }
          bar.querySelectorAll('button').forEach((x) => { x.disabled = true; });
          b.textContent = `${a.label}…`;
          await act(a, null);
        });
        bar.appendChild(b);
      }
      actions.appendChild(h('div', { class: 'card-body inv-actions-body' },
        h('div', { class: 'inv-actions-row' }, h('h2', { class: 'sr-only' }, 'Actions'), bar,
          notes.length ? h('p', { class: 'muted small' }, notes.join(' ')) : null),
        ask ? askForm(INV_LIFECYCLE.find((a) => a.path === ask)) : null));
    }
    if (problem) {
      actions.firstChild.prepend(h('div', { class: 'alert', role: 'alert', dataset: { testid: 'action-error' } }, problem));
    }
    const f = actions.querySelector('textarea');
    if (f) f.focus();
  }

  // ---- audit trail
  async function loadTrail() {
    const rows = [];
    try {
      let cursor = null;
      do {
        const res = await api('GET', `/v1/invoices/${encodeURIComponent(inv.id)}/actions?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        rows.push(...res.data);
        cursor = res.next_cursor;
      } while (cursor && rows.length < 2000);
    } catch (err) {
      if (err.status === 401) return;
      clear(trail).append(h('div', { class: 'card-head' }, h('h2', null, 'Audit trail')),
        h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
      return;
    }
    const tz = browserTz();
    clear(trail).append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Audit trail'),
      h('p', { class: 'sub' }, 'Every generation and transition, oldest first.'))),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table trail-table' },
      h('caption', { class: 'sr-only' }, 'Audit trail'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, `Time (${tz})`), h('th', { scope: 'col' }, 'Actor'),
        h('th', { scope: 'col' }, 'Action'), h('th', { scope: 'col', class: 'hide-sm' }, 'Status'), h('th', { scope: 'col' }, 'Comment'))),
      h('tbody', null, rows.map((r) => h('tr', { dataset: { action: r.action } },
        h('td', { class: 'nowrap', title: r.created_at }, fmtStamp(r.created_at, tz)),
        h('td', { class: 'actor' }, r.actor || '—'),
        h('td', null, INV_ACTION_LABEL[r.action] || r.action),
        h('td', { class: 'nowrap hide-sm' }, r.from_status && r.to_status && r.from_status !== r.to_status
          ? [statusBadge(r.from_status), h('span', { class: 'arrow', 'aria-label': 'to' }, ' → '), statusBadge(r.to_status)]
          : r.to_status ? statusBadge(r.to_status) : '—'),
        h('td', { class: 'comment' }, r.comment || h('span', { class: 'muted' }, '—'))))))));
  }

  // ---- disputes
  async function loadDisputes() {
    let list;
    try {
      list = await listAll(`/v1/disputes?invoice_id=${encodeURIComponent(inv.id)}`, 200);
      list = await Promise.all(list.map((d) => api('GET', `/v1/disputes/${encodeURIComponent(d.id)}`)));
    } catch (err) {
      if (err.status === 401) return;
      clear(disputes).append(h('div', { class: 'card-head' }, h('h2', null, 'Disputes')),
        h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
      return;
    }
    list.sort((a, b) => (a.status === b.status ? Date.parse(b.created_at) - Date.parse(a.created_at) : a.status === 'open' ? -1 : 1));
    const changed = async () => {
      try { inv = await api('GET', `/v1/invoices/${encodeURIComponent(inv.id)}`); drawDetails(); } catch { /* counts only */ }
      await Promise.all([loadDisputes(), loadTrail()]);
    };
    clear(disputes).append(h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Disputes'),
      h('p', { class: 'sub' }, 'Questions about this invoice, between your team and Meterline support.'))));
    const body = h('div', { class: 'card-body disputes-body' });
    disputes.appendChild(body);
    if (!list.length) body.appendChild(h('p', { class: 'muted', dataset: { testid: 'no-disputes' } }, 'No disputes on this invoice.'));
    for (const d of list) body.appendChild(disputeThread(d, changed));
    if (canOpenDispute()) body.appendChild(openDisputeForm(changed));
  }

  function openDisputeForm(changed) {
    const ta = h('textarea', { class: 'input textarea', rows: 3, maxlength: 10000, placeholder: 'What looks wrong on this invoice?' });
    const btn = h('button', { class: 'btn', type: 'submit' }, 'Open dispute');
    const form = h('form', { class: 'dispute-open', 'aria-label': 'Open a dispute' },
      field({ label: 'Open a dispute', name: 'message', required: true, control: ta, hint: 'Starts a thread that stays with the invoice until it is resolved.' }),
      formAlert(),
      h('div', { class: 'form-actions' }, btn));
    onSubmit(form, btn, 'Opening…', async () => {
      const message = ta.value.trim();
      if (!message) throw new ApiError(422, { error: { message: 'Write a message.', details: [{ field: 'message', message: 'Describe the problem.' }] } });
      await api('POST', `/v1/invoices/${encodeURIComponent(inv.id)}/disputes`, { message });
      toast('Dispute opened.');
      await changed();
    });
    return form;
  }

  function disputeThread(d, changed) {
    const open = d.status === 'open';
    const tz = browserTz();
    const art = h('article', { class: `dispute ${open ? 'open' : 'resolved'}`, dataset: { disputeId: d.id, status: d.status }, 'aria-label': `Dispute opened by ${d.opened_by}` },
      h('div', { class: 'dispute-head' },
        h('div', null, h('strong', null, `Opened by ${d.opened_by}`), h('span', { class: 'muted small' }, ` · ${fmtStamp(d.created_at, tz)}`),
          d.resolved_at ? h('span', { class: 'muted small' }, ` · resolved by ${d.resolved_by || '—'} ${fmtStamp(d.resolved_at, tz)}`) : null),
        h('span', { class: `badge ${open ? 'amber' : 'green'}` }, open ? 'Open' : 'Resolved')),
      h('ol', { class: 'thread', 'aria-label': 'Messages' }, (d.messages || []).map((m) => h('li', { class: `msg ${m.author_role === 'admin' ? 'support' : ''}`, dataset: { messageId: String(m.id) } },
        h('div', { class: 'msg-head' }, h('span', { class: 'msg-author' }, m.author),
          h('span', { class: `badge role ${m.author_role === 'admin' ? 'amber' : ''}` }, m.author_role === 'admin' ? 'Meterline support' : (ROLE_LABEL[m.author_role] || m.author_role)),
          h('span', { class: 'muted small', title: m.created_at }, fmtStamp(m.created_at, tz))),
        h('div', { class: 'msg-body' }, m.message)))));
    if (open && (canReplyDispute() || canResolveDispute())) {
      const ta = h('textarea', { class: 'input textarea', rows: 2, maxlength: 10000, placeholder: 'Write a reply…' });
      const send = canReplyDispute() ? h('button', { class: 'btn primary', type: 'submit' }, 'Send reply') : null;
      const resolve = canResolveDispute() ? h('button', { class: 'btn', type: 'button' }, 'Resolve dispute') : null;
      const form = h('form', { class: 'dispute-reply', 'aria-label': 'Reply to dispute' },
        field({ label: canReplyDispute() ? 'Reply' : 'Closing comment', name: 'message', control: ta,
          hint: resolve ? 'Resolving adds what is written here as the closing comment.' : null }),
        formAlert(),
        h('div', { class: 'form-actions' }, resolve, send));
      if (send) {
        onSubmit(form, send, 'Sending…', async () => {
          const message = ta.value.trim();
          if (!message) throw new ApiError(422, { error: { message: 'Write a reply.', details: [{ field: 'message', message: 'Write a reply first.' }] } });
          await api('POST', `/v1/disputes/${encodeURIComponent(d.id)}/messages`, { message });
          await changed();
        });
      } else {
        form.addEventListener('submit', (e) => e.preventDefault());
      }
      if (resolve) {
        resolve.addEventListener('click', async () => {
          resolve.disabled = true;
          clearErrors(form);
          try {
            const comment = ta.value.trim();
            await api('POST', `/v1/disputes/${encodeURIComponent(d.id)}/resolve`, comment ? { comment } : {});
            toast('Dispute resolved.');
            await changed();
          } catch (err) {
            showErrors(form, err);
            resolve.disabled = false;
          }
        });
      }
      art.appendChild(form);
    }
    return art;
  }

  function redraw() {
    drawHead();
    drawActions();
    drawDetails();
    drawLines();
    drawLate();
  }
  redraw();
  await Promise.all([loadTrail(), loadDisputes()]);
}

// ---------------------------------------------------------------------------
// reports: usage-report PDFs requested on the Reports page, invoice PDFs
// (issuing renders them; drafts are previewed from the invoice page)
//
// The worker renders a report in the background.  GET /v1/reports/{id}?wait=N
// holds its answer until the status changes or N seconds pass, so following a
// report costs one request per status change, not a timer; the hold ends on
// a status change only, so while a report runs it is kept short to refresh
// the progress.  A browser opens about six connections per host: at most
// REPORT_FOLLOW_MAX reports of a list are followed at once (the ones this
// page requested always are); the others refresh with the list.  Every role
// requests and reads reports (api/routes.c: ROLES_ALL), viewers included.
// Downloads are plain links: the session cookie authenticates them.

const REPORT_STATUS = { queued: ['Queued', ''], running: ['Running', 'blue'], succeeded: ['Succeeded', 'green'], failed: ['Failed', 'red'] };
const REPORT_UNFINISHED = { queued: true, running: true };
const REPORT_KIND = { usage: 'Usage', invoice: 'Invoice' };
const REPORT_FOLLOW_MAX = 3;
const REPORT_WAIT_S = { queued: 25, running: 3 };

// sleep() that ends early when signal aborts.
function pause(ms, signal) {
  return new Promise((resolve) => {
    if (signal && signal.aborted) { resolve(); return; }
    const done = () => {
      clearTimeout(t);
      if (signal) signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    if (signal) signal.addEventListener('abort', done);
  });
}

// Follows report rep with long polls until it finished; onState(rep) after
// every answer.  Resolves with the last report seen: still unfinished when
// signal aborted (the page was left).  Network trouble is retried with a
// backoff; it throws after seven misses in a row.
async function followReport(rep, onState, signal) {
  let misses = 0;
  while (REPORT_UNFINISHED[rep.status] && !(signal && signal.aborted)) {
    try {
      rep = await api('GET', `/v1/reports/${encodeURIComponent(rep.id)}?wait=${REPORT_WAIT_S[rep.status]}`, undefined, { signal });
      misses = 0;
    } catch (err) {
      if (err.aborted || err.status === 401) return rep;
      if (err.status === 404 || ++misses >= 7) throw err;
      await pause(Math.min(1000 * 2 ** (misses - 1), 15000), signal);
      continue;
    }
    if (onState) onState(rep);
  }
  return rep;
}

const reportHref = (rep) => withOrg(rep.download_url || `/v1/reports/${encodeURIComponent(rep.id)}/download`);

function downloadLink(href, label, attrs = {}) {
  return h('a', { class: `btn ${attrs.cls != null ? attrs.cls : 'sm'}`, href, download: true, ...attrs, cls: null }, icon('download'), label);
}

// Starts the browser's download of href (same origin, so the session cookie goes along).
function startDownload(href) {
  const a = h('a', { href, download: true, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
}

function reportBadge(rep) {
  const [label, cls] = REPORT_STATUS[rep.status] || [rep.status, ''];
  return h('span', { class: `badge ${cls}`, dataset: { testid: 'report-status' } }, label);
}

function reportProgress(rep) {
  const pct = Math.max(0, Math.min(100, rep.progress || 0));
  return h('div', { class: 'report-progress' },
    h('progress', { max: 100, value: pct, 'aria-label': 'Rendering progress' }),
    h('span', { class: 'muted small', dataset: { testid: 'report-progress' } }, rep.status === 'queued' ? 'waiting' : `${pct}%`));
}

// What a report covers: its kind, then the invoice or the customer and range.
function reportSubject(rep, names) {
  const kind = h('span', { class: 'badge kind' }, REPORT_KIND[rep.kind] || rep.kind);
  const who = rep.customer_id ? (names.get(rep.customer_id) || rep.customer_id) : '—';
  if (rep.kind === 'invoice') {
    // an invoice report without a number was rendered before the issue: a draft preview
    const label = rep.invoice_number || 'Draft preview';
    return [h('div', { class: 'primary-cell' }, kind, rep.invoice_id
      ? h('a', { href: `#/invoices/${encodeURIComponent(rep.invoice_id)}`, class: rep.invoice_number ? 'mono' : null }, label) : label),
    h('div', { class: 'sub-cell' }, who)];
  }
  return [h('div', { class: 'primary-cell' }, kind, who),
    who !== rep.customer_id && rep.customer_id ? h('div', { class: 'sub-cell mono' }, rep.customer_id) : null,
    rep.from && rep.to ? h('div', { class: 'sub-cell' }, fmtPeriod(rep.from, rep.to)) : null];
}

function reportRow(rep, names) {
  const tz = browserTz();
  const ok = rep.status === 'succeeded';
  return h('tr', { dataset: { reportId: rep.id, status: rep.status, kind: rep.kind } },
    h('td', { class: 'report-subject' }, reportSubject(rep, names)),
    h('td', { class: 'report-status' }, reportBadge(rep),
      REPORT_UNFINISHED[rep.status] ? reportProgress(rep) : null,
      rep.status === 'failed' ? h('div', { class: 'report-error', dataset: { testid: 'report-error' } }, rep.error || 'Rendering failed.') : null),
    h('td', { class: 'nowrap hide-sm', title: rep.created_at }, fmtStamp(rep.created_at, tz)),
    h('td', { class: 'nowrap hide-sm', title: rep.finished_at || '' }, rep.finished_at ? fmtStamp(rep.finished_at, tz) : '—'),
    h('td', { class: 'num right nowrap hide-sm', dataset: { testid: 'report-size', value: rep.size_bytes == null ? '' : String(rep.size_bytes) } },
      ok ? fmtBytes(rep.size_bytes) : '—'),
    h('td', { class: 'right' }, ok ? downloadLink(reportHref(rep), 'Download', {
      title: `PDF, ${fmtBytes(rep.size_bytes)}`,
      'aria-label': rep.kind === 'invoice' ? `Download the PDF of invoice ${rep.invoice_number || '(draft)'}`
        : `Download the usage report of ${rep.customer_id || 'the customer'}${rep.from && rep.to ? `, ${fmtPeriod(rep.from, rep.to)}` : ''}`,
    }) : null));
}

// First and exclusive last day (YYYY-MM-DD, UTC) of a named range.
function reportRange(preset) {
  const d = new Date();
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const tomorrow = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  if (preset === 'this-month') return { start: day(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)), end: day(tomorrow) };
  if (preset === 'last-30') return { start: day(tomorrow - 30 * DAY_MS), end: day(tomorrow) };
  return monthBounds(prevMonth());
}

async function pageReports(page) {
  if (!state.reports) state.reports = { status: '', kind: '', customer: '' };
  const F = state.reports;
  const signal = pageSignal();
  page.appendChild(pageHead('Reports', 'Usage reports and invoice PDFs, rendered in the background. Anyone on the team can request and download them.'));
  const first = await api('GET', '/v1/customers?limit=200');
  const names = new Map(first.data.map((c) => [c.external_id, c.name]));

  // ---- request a usage report
  const cust = customerInput(first, '', { placeholder: 'site-00042', required: true });
  const range = reportRange('last-month');
  const presetSel = select([['last-month', 'Last month'], ['this-month', 'This month so far'], ['last-30', 'Last 30 days'], ['custom', 'Custom']], 'last-month');
  const fromIn = input({ type: 'date', value: range.start, required: true });
  const toIn = input({ type: 'date', value: range.end, required: true });
  const covers = h('p', { class: 'muted small report-covers', dataset: { testid: 'report-covers' } });
  const drawCovers = () => {
    covers.textContent = fromIn.value && toIn.value && toIn.value > fromIn.value
      ? `Covers ${fmtPeriod(`${fromIn.value}T00:00:00Z`, `${toIn.value}T00:00:00Z`)} (UTC): totals per metric, a daily chart and an hourly table.`
      : 'Pick a range of whole days, at most 366.';
  };
  presetSel.addEventListener('change', () => {
    if (presetSel.value !== 'custom') {
      const r = reportRange(presetSel.value);
      fromIn.value = r.start;
      toIn.value = r.end;
    }
    drawCovers();
  });
  for (const el of [fromIn, toIn]) el.addEventListener('input', () => { presetSel.value = 'custom'; drawCovers(); });
  drawCovers();
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Request report');
  const form = h('form', { 'aria-label': 'Request a usage report' },
    h('div', { class: 'grid report-form-grid' },
      field({ label: 'Customer', name: 'customer_id', required: true, control: cust.el, hint: cust.hint }),
      field({ label: 'Range', name: 'preset', control: presetSel }),
      field({ label: 'From', name: 'from', required: true, control: fromIn, hint: 'First day included (UTC).' }),
      field({ label: 'To (exclusive)', name: 'to', required: true, control: toIn, hint: 'The first day not included.' })),
    cust.dl,
    covers,
    formAlert(),
    h('div', { class: 'form-actions' }, btn));
  onSubmit(form, btn, 'Requesting…', async () => {
    const body = { kind: 'usage', customer_id: cust.el.value.trim(), from: fromIn.value, to: toIn.value };
    const errs = [];
    if (!body.customer_id) errs.push({ field: 'customer_id', message: 'Choose the customer to report on.' });
    if (!body.from) errs.push({ field: 'from', message: 'Pick the first day.' });
    if (!body.to) errs.push({ field: 'to', message: 'Pick the day after the last one.' });
    if (errs.length) throw new ApiError(422, { error: { message: 'Check the fields.', details: errs } });
    const meta = {};
    const rep = await api('POST', '/v1/reports', body, { meta });
    // 202: a new report; 200: the same request is still queued or running
    toast(meta.status === 200 ? 'The same report is already being prepared; showing it.' : 'Report requested. It renders in the background.');
    show(rep);
  }, (err) => (err.status === 422 && err.details.length ? null : errorText(err)));
  page.appendChild(h('section', { class: 'card form-card', id: 'report-request' },
    h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Request a usage report'),
      h('p', { class: 'sub' }, 'A PDF of one customer\'s metered usage. You can leave this page while it renders.'))),
    h('div', { class: 'card-body' }, form)));

  // ---- the list, its filters and paging
  const fcust = customerInput(first, F.customer, { placeholder: 'All customers' });
  const statusSel = select([['', 'All statuses'], ...Object.entries(REPORT_STATUS).map(([k, [l]]) => [k, l])], F.status);
  const kindSel = select([['', 'All kinds'], ['usage', 'Usage reports'], ['invoice', 'Invoice PDFs']], F.kind);
  const resetBtn = h('button', { class: 'btn sm ghost', type: 'button' }, 'Clear filters');
  const filters = h('form', { class: 'inv-filters report-filters', 'aria-label': 'Report filters' },
    field({ label: 'Customer', name: 'customer_id', control: fcust.el, hint: fcust.hint }),
    field({ label: 'Status', name: 'status', control: statusSel }),
    field({ label: 'Kind', name: 'kind', control: kindSel }),
    h('div', { class: 'inv-filter-reset' }, resetBtn),
    fcust.dl);
  filters.noValidate = true;
  filters.addEventListener('submit', (e) => { e.preventDefault(); load(true); });
  statusSel.addEventListener('change', () => { F.status = statusSel.value; load(true); });
  kindSel.addEventListener('change', () => { F.kind = kindSel.value; load(true); });
  let custTimer = null;
  fcust.el.addEventListener('input', () => {
    clearTimeout(custTimer);
    const v = fcust.el.value.trim();
    custTimer = setTimeout(() => { if (F.customer !== v) { F.customer = v; load(true); } }, fcust.names.has(v) || !v ? 0 : 500);
  });
  resetBtn.addEventListener('click', () => {
    F.customer = ''; F.status = ''; F.kind = '';
    fcust.el.value = ''; statusSel.value = ''; kindSel.value = '';
    load(true);
  });

  const countEl = h('span', { class: 'count' });
  const tbody = h('tbody');
  const table = h('div', { class: 'table-wrap', hidden: true }, h('table', { class: 'table reports-table' },
    h('caption', { class: 'sr-only' }, 'Reports'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Report'),
      h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'hide-sm' }, 'Requested'),
      h('th', { scope: 'col', class: 'hide-sm' }, 'Finished'), h('th', { scope: 'col', class: 'right hide-sm' }, 'Size'),
      // no .sr-only text here: absolutely placed, it would escape the table's scroller on phones
      h('th', { scope: 'col', class: 'right', 'aria-label': 'Download' }))),
    tbody));
  const status = h('div');
  const more = h('button', { class: 'btn', type: 'button' }, 'Load more');
  const foot = h('div', { class: 'card-foot', hidden: true }, more);
  page.appendChild(h('section', { class: 'card', id: 'reports' },
    h('div', { class: 'card-head' }, h('div', null, h('h2', null, 'Reports'), h('p', { class: 'sub' }, 'Newest first. Invoice PDFs appear here when invoices are issued or previewed.')), countEl),
    h('div', { class: 'card-body inv-filter-body' }, filters), table, status, foot));

  const rows = new Map();      // report id → its <tr>
  const following = new Set(); // report ids with a long poll under way
  let cursor = null;
  let seq = 0;

  const countText = () => {
    const n = rows.size;
    countEl.textContent = `${n}${cursor ? '+' : ''} report${n === 1 && !cursor ? '' : 's'}`;
  };
  const put = (rep, fresh) => {
    const tr = reportRow(rep, names);
    const old = rows.get(rep.id);
    if (old) {
      if (old.classList.contains('fresh')) tr.classList.add('fresh');
      old.replaceWith(tr);
    } else if (fresh) {
      tbody.prepend(tr);
    } else {
      tbody.appendChild(tr);
    }
    if (fresh) tr.classList.add('fresh');
    rows.set(rep.id, tr);
  };
  // Follows an unfinished report and redraws its row; mine: requested here
  // (always followed, and a toast when it ends).
  const follow = (rep, mine) => {
    if (!REPORT_UNFINISHED[rep.status] || following.has(rep.id)) return;
    if (!mine && following.size >= REPORT_FOLLOW_MAX) return;
    following.add(rep.id);
    followReport(rep, (r) => { if (rows.has(r.id)) put(r, false); }, signal).then((r) => {
      if (!mine || signal.aborted) return;
      if (r.status === 'succeeded') toast(`Report ready (${fmtBytes(r.size_bytes)}).`);
      else if (r.status === 'failed') toast(`The report failed${r.error ? `: ${r.error}` : '.'}`, 'error');
    }, (err) => {
      if (!signal.aborted) toast(`Lost track of a report: ${errorText(err)} Reload the page to see its status.`, 'error');
    }).finally(() => following.delete(rep.id));
  };
  function show(rep) {
    clear(status);
    table.hidden = false;
    put(rep, true);
    countText();
    follow(rep, true);
  }

  async function load(reset) {
    const my = ++seq;
    if (reset) {
      cursor = null;
      clear(status).appendChild(loading());
      table.classList.add('stale');
    }
    more.disabled = true;
    const qs = new URLSearchParams({ limit: '25' });
    if (F.status) qs.set('status', F.status);
    if (F.kind) qs.set('kind', F.kind);
    if (F.customer) qs.set('customer_id', F.customer);
    if (!reset && cursor) qs.set('cursor', cursor);
    try {
      const res = await api('GET', `/v1/reports?${qs}`);
      if (my !== seq) return;
      if (reset) { clear(tbody); rows.clear(); }
      clear(status);
      table.classList.remove('stale');
      clearErrors(filters);
      for (const rep of res.data) { put(rep, false); follow(rep, false); }
      cursor = res.next_cursor;
      foot.hidden = !cursor;
      table.hidden = rows.size === 0;
      countText();
      if (!rows.size) {
        status.appendChild(F.customer || F.status || F.kind
          ? empty('No reports match', 'Try another customer, status or kind, or clear the filters.')
          : empty('No reports yet', 'Request a usage report above. Invoice PDFs are listed here once invoices are issued.'));
      }
    } catch (err) {
      if (my !== seq) return;
      clear(status);
      table.classList.remove('stale');
      if (err.status === 422 || err.status === 400) showErrors(filters, err);
      else status.appendChild(h('div', { class: 'card-body' }, h('div', { class: 'alert', role: 'alert' }, errorText(err))));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', () => load(false));
  await load(true);
}

// ---- the PDF of one invoice (its page's header)
//
// An issued invoice (it has a number: issued, paid, or void after issue)
// links GET /v1/invoices/{id}/pdf.  Its readiness is asked first with
// If-None-Match: * — 304 while the PDF exists (no body sent), 409 while it
// renders — so the link only shows once a click downloads a PDF; while it
// renders the check is repeated with a backoff.  An invoice without a number
// offers a preview: an invoice report, followed and then downloaded.

function invoicePdf(slot, getInv) {
  let run = 0;
  let drawnFor = null;
  const pdfPath = (inv) => withOrg(`/v1/invoices/${encodeURIComponent(inv.id)}/pdf`);

  async function probe(inv, my) {
    const signal = pageSignal();
    const until = Date.now() + 5 * 60000;
    let delay = 1000;
    clear(slot).appendChild(h('span', { class: 'muted small' }, 'Checking the PDF…'));
    while (my === run && !(signal && signal.aborted)) {
      let res = null;
      let body = null;
      try {
        res = await fetch(pdfPath(inv), { credentials: 'same-origin', cache: 'no-store', headers: { 'If-None-Match': '*' }, signal });
        if (res.status !== 304 && res.status !== 200) body = await res.json().catch(() => null);
      } catch {
        if (signal && signal.aborted) return;
      }
      if (my !== run) return;
      if (res && (res.status === 304 || res.status === 200)) {
        clear(slot).appendChild(downloadLink(pdfPath(inv), 'Download PDF', { cls: '', dataset: { testid: 'invoice-pdf-download' } }));
        return;
      }
      if (res && res.status === 401) { sessionLost(); return; }
      const d = body && body.error && body.error.details ? body.error.details[0] : null;
      if (res && res.status === 409 && d && d.field === 'report' && d.message === 'failed') {
        failed(inv, my, body.error.message);
        return;
      }
      if (res && (res.status === 404 || (res.status === 409 && d && d.field === 'status'))) { clear(slot); return; }
      if (Date.now() > until) {
        const again = h('button', { class: 'btn sm', type: 'button', onclick: () => { if (my === run) probe(inv, ++run); } }, 'Check again');
        clear(slot).append(h('span', { class: 'pdf-note', role: 'status' }, 'The PDF is taking longer than usual.'), again);
        return;
      }
      const ra = res ? Number.parseInt(res.headers.get('Retry-After') || '', 10) : Number.NaN;
      const wait = Math.max(delay, Number.isFinite(ra) ? ra * 1000 : 0);
      delay = Math.min(delay * 2, 15000);
      clear(slot).append(h('span', { class: 'pdf-preparing', role: 'status', dataset: { testid: 'invoice-pdf-preparing' } },
        h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        !res ? 'Cannot reach Meterline to check the PDF…'
          : res.status === 409 ? 'PDF is being prepared…'
            : `The PDF check failed (${body && body.error && body.error.message ? body.error.message : `HTTP ${res.status}`})…`,
        h('span', { class: 'muted small' }, ` checking again in ${Math.round(wait / 1000)} s`)));
      await pause(wait, signal);
    }
  }

  // The last rendering failed: say so, and offer to render it again.
  function failed(inv, my, message) {
    const again = h('button', { class: 'btn sm', type: 'button' }, 'Render again');
    again.addEventListener('click', async () => {
      again.disabled = true;
      again.textContent = 'Rendering…';
      try {
        const rep = await followReport(await api('POST', '/v1/reports', { kind: 'invoice', invoice_id: inv.id }), null, pageSignal());
        if (my !== run) return;
        if (rep.status === 'failed') toast(`Rendering failed again${rep.error ? `: ${rep.error}` : '.'}`, 'error');
        probe(inv, ++run);
      } catch (err) {
        if (err.status !== 401) toast(errorText(err), 'error');
        again.disabled = false;
        again.textContent = 'Render again';
      }
    });
    clear(slot).append(h('span', { class: 'pdf-note error', role: 'alert', title: message, dataset: { testid: 'invoice-pdf-failed' } }, 'The PDF could not be rendered.'), again);
  }

  function preview(my) {
    const btn = h('button', { class: 'btn', type: 'button', dataset: { testid: 'invoice-preview' } }, icon('download'), 'Preview PDF');
    const note = h('span', { class: 'pdf-note muted small', role: 'status' });
    const linkSlot = h('span');
    btn.addEventListener('click', async () => {
      const inv = getInv();
      btn.disabled = true;
      clear(linkSlot);
      note.textContent = 'Preparing the preview…';
      try {
        let rep = await api('POST', '/v1/reports', { kind: 'invoice', invoice_id: inv.id });
        rep = await followReport(rep, (r) => {
          note.textContent = r.status === 'running' ? `Rendering the preview… ${r.progress || 0}%` : 'Preparing the preview…';
        }, pageSignal());
        if (my !== run) return;
        if (rep.status === 'succeeded') {
          note.textContent = '';
          linkSlot.appendChild(h('a', { href: reportHref(rep), download: true, class: 'small', dataset: { testid: 'invoice-preview-link' } },
            `Download the preview again (${fmtBytes(rep.size_bytes)})`));
          startDownload(reportHref(rep));
        } else if (rep.status === 'failed') {
          note.textContent = `The preview could not be rendered${rep.error ? `: ${rep.error}` : '.'}`;
        } else {
          note.textContent = '';
        }
      } catch (err) {
        if (err.status !== 401) note.textContent = errorText(err);
      } finally {
        btn.disabled = false;
      }
    });
    clear(slot).append(btn, note, linkSlot);
  }

  // Draws the slot for the invoice's current state (again only when its
  // number or status changed).
  return function draw() {
    const inv = getInv();
    const key = `${inv.status}:${inv.number || ''}`;
    if (key === drawnFor) return;
    drawnFor = key;
    const my = ++run;
    if (inv.number) probe(inv, my);
    else preview(my);
  };
}

// ---------------------------------------------------------------------------
// boot

async function boot(notice) {
  try {
    state.me = await api('GET', '/v1/me', undefined, { auth: false });
  } catch (err) {
    if (err.status === 401) { renderAuth(location.hash === '#/signup' ? 'signup' : 'login', notice); return; }
    clear($app).appendChild(h('main', { class: 'auth' }, h('div', { class: 'auth-card' },
      h('div', { class: 'auth-brand' }, h('img', { src: '/ui/logo.svg', alt: '', width: 32, height: 32 }), h('span', { class: 'name' }, 'Meterline')),
      h('div', { class: 'alert', role: 'alert' }, errorText(err)),
      h('div', { class: 'form-actions' }, h('button', { class: 'btn primary', type: 'button', onclick: () => boot() }, 'Retry')))));
    return;
  }
  state.cache = {};
  if (!state.me.user) { // an API key has no console
    renderAuth('login', 'API keys cannot sign in to the console.');
    return;
  }
  if (isAdmin()) {
    state.orgs = await listAll('/v1/admin/organizations').catch(() => []);
    const saved = state.org || localStorage.getItem(ORG_KEY);
    state.org = state.orgs.some((o) => o.slug === saved) ? saved : null;
  }
  if (location.hash === '#/signup' || location.hash === '#/login') history.replaceState(null, '', '#/');
  renderShell();
  route();
}

window.addEventListener('hashchange', route);
boot();
