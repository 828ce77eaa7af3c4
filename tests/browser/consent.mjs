// Drives the mock authorization server's login and consent page in the
// system's headless Chromium, for tests/test_browser.py.
//
// Usage: node consent.mjs '<json>' where the JSON object has
//   url           the authorization URL the client printed
//   chromium      the Chromium executable (e.g. /usr/bin/chromium)
//   userDataDir   a fresh, empty profile directory
//   outDir        where consent.png, consent-submitted.png and result.png go
//   user          the subject to pick on the page (e.g. "bob")
//   action        "approve" or "deny"
//   tamper        "" (honest submission), "token" (change the form's CSRF
//                 token), "cookie" (drop the CSRF cookie) or "cross-site"
//                 (post the page's own fields, token included, from a page
//                 of another site: the browser withholds the SameSite cookie)
//   timeoutMs     bound on each browser step
//
// It prints one JSON object on stdout: what the page showed (form fields,
// security headers, the CSRF cookie's attributes, never its value) and where
// the submission ended (origin and path, the names of the query parameters,
// and error/iss values; never an authorization code). Exit status 0 when the
// page could be driven, 2 when it could not (the message is on stderr).

import { chromium } from 'playwright-core';
import { join } from 'node:path';

// Flags for a machine without network access: without them Chromium keeps
// calling Google services and floods the log with refused connections.
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--no-default-browser-check',
  '--metrics-recording-only', '--password-store=basic',
];

function parseOptions() {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: node consent.mjs \'{"url": …}\'');
  const opts = JSON.parse(raw);
  for (const key of ['url', 'chromium', 'userDataDir', 'outDir', 'user', 'action']) {
    if (typeof opts[key] !== 'string' || opts[key] === '') throw new Error(`option ${key} is required`);
  }
  if (!['approve', 'deny'].includes(opts.action)) throw new Error(`action must be approve or deny`);
  if (!['', 'token', 'cookie', 'cross-site', undefined].includes(opts.tamper)) {
    throw new Error('tamper must be "", token, cookie or cross-site');
  }
  opts.timeoutMs = Number(opts.timeoutMs) > 0 ? Number(opts.timeoutMs) : 20000;
  return opts;
}

// describeURL keeps what a test may assert on without copying a code or a
// state value into the test's output.
function describeURL(raw) {
  const u = new URL(raw);
  const q = u.searchParams;
  return {
    origin: u.origin,
    path: u.pathname,
    params: [...new Set(q.keys())].sort(),
    error: q.get('error'),
    error_description: q.get('error_description'),
    iss: q.get('iss'),
  };
}

// An attacker's site. Playwright answers its requests itself (context.route),
// so nothing leaves the machine; .example is reserved (RFC 2606).
const ATTACKER_ORIGIN = 'http://attacker.example';

const escapeHTML = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// attackerPage is a cross-site form that replays the consent form's fields
// to the decision endpoint: the CSRF attack of RFC 6749 §10.12, given the
// best case for the attacker (a leaked request id and form token).
function attackerPage(action, fields) {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHTML(k)}" value="${escapeHTML(v)}">`)
    .join('');
  return `<!doctype html><title>Win a prize</title><form method="post" action="${escapeHTML(action)}">` +
    `${inputs}<button id="go">Claim</button></form>`;
}

// submitFromAttacker opens the attacker's page in the tab that shows the
// consent page and submits its form (a user click: the top-level cross-site
// POST navigation a real attack makes).
async function submitFromAttacker(context, page, user, action) {
  const form = await page.evaluate(() => {
    const f = document.querySelector('form');
    const fields = Object.fromEntries([...f.querySelectorAll('input[type=hidden]')].map((i) => [i.name, i.value]));
    return { action: new URL(f.getAttribute('action'), document.baseURI).href, fields };
  });
  const body = attackerPage(form.action, { ...form.fields, user, action });
  await context.route(`${ATTACKER_ORIGIN}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body }));
  await page.goto(`${ATTACKER_ORIGIN}/`, { waitUntil: 'load' });
}

// readConsentPage collects what the page shows and how its form is built.
async function readConsentPage(page) {
  return page.evaluate(() => {
    const form = document.querySelector('form');
    const hidden = (name) => form?.querySelector(`input[type=hidden][name="${name}"]`)?.value ?? null;
    const csrf = hidden('csrf_token');
    const radios = [...document.querySelectorAll('input[type=radio][name=user]')];
    return {
      title: document.title,
      heading: document.querySelector('h1')?.textContent ?? null,
      text: document.body.innerText,
      formMethod: form?.getAttribute('method') ?? null,
      // form.action would be the button named "action" (named form controls shadow properties).
      formAction: form ? new URL(form.getAttribute('action'), document.baseURI).pathname : null,
      hasRequestID: Boolean(hidden('request_id')),
      csrfLength: csrf === null ? null : csrf.length,
      users: radios.map((r) => r.value),
      checkedUser: radios.find((r) => r.checked)?.value ?? null,
      buttons: [...document.querySelectorAll('button[name=action]')].map((b) => ({ value: b.value, label: b.textContent.trim() })),
      scopes: [...document.querySelectorAll('li code')].map((c) => c.textContent),
    };
  });
}

async function run(opts) {
  const context = await chromium.launchPersistentContext(opts.userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 900, height: 1000 },
    timeout: opts.timeoutMs,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(opts.timeoutMs);
    // Every document the main frame loaded, in order, redirects included:
    // the proof of where a submission went (and that no code was issued).
    const documents = [];
    page.on('response', (resp) => {
      const req = resp.request();
      if (req.resourceType() === 'document' && req.frame() === page.mainFrame()) {
        documents.push({ method: req.method(), status: resp.status(), ...describeURL(resp.url()) });
      }
    });

    // What the page complained about (CSP refusals, script errors), by the page's path.
    const console_ = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') {
        console_.push({ type: msg.type(), page: new URL(page.url()).pathname, text: msg.text().slice(0, 300) });
      }
    });
    page.on('pageerror', (err) => console_.push({ type: 'pageerror', page: new URL(page.url()).pathname, text: String(err).slice(0, 300) }));

    const first = await page.goto(opts.url, { waitUntil: 'load' });
    const headers = first.headers();
    const consent = await readConsentPage(page);
    consent.status = first.status();
    consent.headers = {
      'content-type': headers['content-type'] ?? null,
      'cache-control': headers['cache-control'] ?? null,
      'x-frame-options': headers['x-frame-options'] ?? null,
      'content-security-policy': headers['content-security-policy'] ?? null,
    };
    consent.cookies = (await context.cookies()).map(({ name, path, httpOnly, sameSite, secure, value }) => ({
      name, path, httpOnly, sameSite, secure, valueLength: value.length,
    }));
    await page.screenshot({ path: join(opts.outDir, 'consent.png'), fullPage: true });

    await page.check(`input[type=radio][name=user][value="${opts.user}"]`);
    if (opts.tamper === 'token') {
      // One character changed: same length, so only the comparison can tell.
      await page.evaluate(() => {
        const input = document.querySelector('input[name=csrf_token]');
        const last = input.value.slice(-1);
        input.value = input.value.slice(0, -1) + (last === 'A' ? 'B' : 'A');
      });
    } else if (opts.tamper === 'cookie') {
      await context.clearCookies();
    }

    // The page as it is submitted: the chosen user (and, when tampered, the changed form).
    await page.screenshot({ path: join(opts.outDir, 'consent-submitted.png'), fullPage: true });

    let submit = `button[name=action][value="${opts.action}"]`;
    if (opts.tamper === 'cross-site') {
      await submitFromAttacker(context, page, opts.user, opts.action);
      submit = '#go';
    }
    const before = documents.length;
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(submit)]);
    const result = {
      ...describeURL(page.url()),
      title: await page.title(),
      text: await page.evaluate(() => document.body.innerText),
      documents: documents.slice(before),
    };
    await page.screenshot({ path: join(opts.outDir, 'result.png'), fullPage: true });
    return { browser: context.browser()?.version() ?? null, consent, result, console: console_ };
  } finally {
    await context.close();
  }
}

try {
  const report = await run(parseOptions());
  process.stdout.write(JSON.stringify(report) + '\n');
} catch (err) {
  process.stderr.write(`consent.mjs: ${err?.stack ?? err}\n`);
  process.exit(2);
}
