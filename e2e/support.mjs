// Helpers of the browser journeys: Chromium, the harness API (mails, the
// database switch), the JSON API for setting up users, screenshots, and
// waiting for what a page shows.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the journeys through \`go test ./e2e/\`, which starts the servers`);
  return v;
}

export const BASE = need('E2E_BASE_URL');
export const CAPPED = need('E2E_CAPPED_URL');
const HARNESS = need('E2E_HARNESS_URL');
const SHOTS = need('E2E_SCREENSHOTS');

// Every address the browser may talk to is on this machine.
for (const u of [BASE, CAPPED, HARNESS]) {
  const host = new URL(u).hostname;
  assert.ok(host === 'localhost' || host === '127.0.0.1', `${u} is not a loopback address`);
}

// launch starts Debian's Chromium headless, with a fresh profile
// (Playwright makes a new temporary user-data dir per launch and removes
// it at close) and nothing that phones home.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
    ],
    timeout: 60_000,
  });
}

// newPage opens a page in a new browser context (its own cookie jar: a
// second context is a second device). Console errors that are not failed
// requests (those are expected: a 401, a 503) and uncaught exceptions are
// collected; checkClean fails the journey on any, a CSP violation included.
export async function newPage(browser) {
  const context = await browser.newContext({
    viewport: { width: 960, height: 900 },
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      page.problems.push(`console: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => page.problems.push(`uncaught: ${err.message}`));
  return page;
}

export function checkClean(...pages) {
  for (const p of pages) assert.deepEqual(p.problems, [], `problems in ${p.url()}`);
}

let shotNo = 0;

// shot saves a full-page screenshot as NN-name.png.
export async function shot(page, name) {
  shotNo++;
  const file = path.join(SHOTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  return file;
}

// ---- the harness API ----

async function harness(method, p) {
  const res = await fetch(HARNESS + p, { method });
  if (!res.ok) throw new Error(`harness ${method} ${p}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

// mail waits for the next mail to `to` with a <base>/<page>?token= link.
export const mail = (to, page) => harness('GET', `/mail?to=${encodeURIComponent(to)}&path=${encodeURIComponent(page)}`);
export const cutDatabase = () => harness('POST', '/db/cut');
export const restoreDatabase = () => harness('POST', '/db/restore');

// ---- the JSON API, for setting the stage ----

export async function api(base, method, p, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return data;
}

// createUser registers and confirms an account through the API.
export async function createUser(email, password, base = BASE) {
  await api(base, 'POST', '/api/v1/auth/register', { email, password });
  const m = await mail(email, 'verify-email');
  const token = new URL(m.link).searchParams.get('token');
  await api(base, 'POST', '/api/v1/auth/verify-email', { token });
}

let seq = 0;
// unique is a fresh address for one journey.
export const unique = (who) => `${who}.${Date.now().toString(36)}${++seq}@example.test`;

// ---- the pages ----

// textOf waits until sel is visible and answers its text.
export async function textOf(page, sel) {
  const loc = page.locator(sel);
  await loc.waitFor({ state: 'visible' });
  return (await loc.textContent()).trim();
}

// waitText waits until sel is visible with text matching re.
export async function waitText(page, sel, re) {
  await page.locator(sel, { hasText: re }).first().waitFor({ state: 'visible' });
  return textOf(page, sel);
}

// submit clicks the form's submit button and waits for the answer of the
// API route it calls.
export async function submit(page, form, route) {
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === route);
  await page.click(`${form} button[type=submit]`);
  return answered;
}

// signIn fills the sign-in form and submits it; returns the API's answer.
export async function signIn(page, email, password) {
  await page.fill('#password-form input[name=email]', email);
  await page.fill('#password-form input[name=password]', password);
  return submit(page, '#password-form', '/api/v1/auth/login');
}

// ---- two-step verification ----

function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${s}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

// totp is the RFC 6238 code of a base32 secret at a time (HMAC-SHA-1, 6
// digits, 30-second steps), computed here as an authenticator app would.
export function totp(secret, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const h = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}
