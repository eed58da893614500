// The browser journeys through the hosted pages (api.md, "Hosted pages").
// Run by `go test ./e2e/`, which starts the servers and the harness (see
// e2e_test.go); each journey is a person using the pages in Chromium.
//
// What fails them: an inline style or script anywhere (the CSP blocks it
// and Chromium logs the violation, which checkClean turns into a failure,
// as it does any uncaught exception); an outage worded as anything but the
// outage sentence, or counted toward the lock (the same password must sign
// in afterwards); a lock message without the time left; a session that
// survives a password change on another device; a token left in the
// address bar; the passkey box shown before the capability probe said yes;
// a session token in web storage. The inline style, the outage worded as a
// wrong password, the token left in the address bar and the passkey box
// shown from the start were each put into the pages once, and the
// journeys failed.

import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import {
  BASE, CAPPED, launch, newPage, checkClean, shot, mail, cutDatabase, restoreDatabase,
  api, createUser, unique, textOf, waitText, submit, signIn, totp,
} from './support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const pw1 = 'plum orchard lantern 41';
const pw2 = 'violet harbour compass 73';
const pw3 = 'granite meadow whistle 58';

const cookieNamed = async (page, name) => (await page.context().cookies()).find((c) => c.name === name);

test('sign up, confirm the address, sign in, change the password: the other session ends', async () => {
  const email = unique('ann');
  const a = await newPage(browser);

  await a.goto(BASE + '/signup');
  await a.fill('#signup-form input[name=name]', 'Ann Example');
  await a.fill('#signup-form input[name=email]', email);
  await a.fill('#signup-form input[name=password]', pw1);
  await submit(a, '#signup-form', '/api/v1/auth/register');
  assert.match(await textOf(a, '#check-mail-text'), new RegExp(email.replace(/[.+]/g, '\\$&')));
  await shot(a, 'sign-up-mail-sent');

  // Not confirmed yet: the sign-in page says so and offers the mail again.
  await a.goto(BASE + '/');
  await signIn(a, email, pw1);
  await waitText(a, '#password-form .error', /Confirm your email address first/);
  assert.ok(await a.locator('#resend').isVisible(), 'the resend button is offered');

  const m = await mail(email, 'verify-email');
  assert.ok(m.link.startsWith(BASE + '/verify-email?token='), `the mail links to the page: ${m.link}`);
  await a.goto(m.link);
  await waitText(a, '#done', /Your email address is confirmed/);
  assert.ok(!a.url().includes('token='), `the page removed the token from the address bar: ${a.url()}`);
  await shot(a, 'verify-email');

  // Opening the spent link again explains and offers a new one.
  await a.goto(m.link);
  await waitText(a, '#failed', /not valid|expired/);
  assert.ok(await a.locator('#resend-form').isVisible());

  await a.goto(BASE + '/');
  await signIn(a, email, pw1);
  await a.waitForURL(BASE + '/account');
  assert.equal(await textOf(a, '#p-email'), email);
  assert.equal(await textOf(a, '#p-name'), 'Ann Example');
  await a.locator('#session-list li').first().waitFor();

  // The session is the HttpOnly cookie plus the readable CSRF cookie; no
  // token is kept in storage.
  const session = await cookieNamed(a, 'mana_session');
  assert.ok(session, 'mana_session is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  assert.equal(session.secure, false, 'http://localhost is development: not Secure');
  assert.equal((await cookieNamed(a, 'mana_csrf')).httpOnly, false);
  assert.equal(await a.evaluate(() => localStorage.length + sessionStorage.length), 0, 'nothing in web storage');
  // The page's CSP is the strict one, as the browser received it.
  const res = await a.request.get(BASE + '/account');
  assert.match(res.headers()['content-security-policy'], /default-src 'self'.*frame-ancestors 'none'/);

  // A second device.
  const b = await newPage(browser);
  await b.goto(BASE + '/');
  await signIn(b, email, pw1);
  await b.waitForURL(BASE + '/account');
  await b.locator('#session-list li').nth(1).waitFor();

  await a.reload();
  await a.locator('#session-list li').nth(1).waitFor();
  assert.equal(await a.locator('#session-list li[data-current=true]').count(), 1);
  await shot(a, 'account');

  await a.fill('#password-form input[name=currentPassword]', pw1);
  await a.fill('#password-form input[name=newPassword]', pw2);
  await submit(a, '#password-form', '/api/v1/auth/change-password');
  await waitText(a, '#password-form .ok', /Password changed/);
  await a.waitForFunction(() => document.querySelectorAll('#session-list li').length === 1);

  // The other device's session was revoked: its next page load ends there.
  await b.reload();
  await b.waitForURL((u) => u.pathname === '/' && u.searchParams.get('reason') === 'session-ended');
  await waitText(b, '#notice', /Your session has ended/);
  await shot(b, 'sign-in-session-ended');

  await signIn(b, email, pw1);
  await waitText(b, '#password-form .error', /Wrong email address or password/);
  await signIn(b, email, pw2);
  await b.waitForURL((u) => u.pathname === '/account');

  // Sign out: the server ends the session and clears the cookies.
  await b.click('#signout');
  await b.waitForURL((u) => u.searchParams.get('reason') === 'signed-out');
  await waitText(b, '#notice', /You are signed out/);
  assert.equal(await cookieNamed(b, 'mana_session'), undefined);
  await b.goto(BASE + '/account');
  await b.waitForURL((u) => u.pathname === '/' && u.searchParams.get('next') === 'account');

  checkClean(a, b);
  await a.context().close();
  await b.context().close();
});

test('forgot the password: the mailed link resets it, and the new one signs in', async () => {
  const email = unique('bob');
  await createUser(email, pw1);
  const page = await newPage(browser);

  await page.goto(BASE + '/');
  await page.click('text=Forgot your password?');
  await page.waitForURL(BASE + '/forgot-password');
  await page.fill('#forgot-form input[name=email]', email);
  await submit(page, '#forgot-form', '/api/v1/auth/forgot-password');
  await waitText(page, '#forgot-form .ok', /a mail with a link/);
  await shot(page, 'forgot-password');

  const m = await mail(email, 'reset-password');
  await page.goto(m.link);
  assert.ok(!page.url().includes('token='), 'the page removed the token from the address bar');
  await page.fill('#reset-form input[name=newPassword]', pw3);
  await page.fill('#reset-form input[name=repeat]', pw3 + 'x');
  await page.click('#reset-form button[type=submit]');
  await waitText(page, '#reset-form .error', /repeated password/);
  await page.fill('#reset-form input[name=repeat]', pw3);
  await submit(page, '#reset-form', '/api/v1/auth/reset-password');
  await waitText(page, '#done', /Your password is changed/);
  await shot(page, 'reset-password');

  await page.click('nav.links a[href="./"]');
  await signIn(page, email, pw1);
  await waitText(page, '#password-form .error', /Wrong email address or password/);
  await signIn(page, email, pw3);
  await page.waitForURL(BASE + '/account');
  assert.equal(await textOf(page, '#p-email'), email);

  checkClean(page);
  await page.context().close();
});

test('five wrong passwords lock the account: the page says so, with the time left', async () => {
  const email = unique('gina');
  await createUser(email, pw1);
  const page = await newPage(browser);
  await page.goto(BASE + '/');

  for (let i = 1; i <= 5; i++) {
    const res = await signIn(page, email, `wrong password ${i}`);
    assert.equal(res.status(), 401, `attempt ${i}`);
    await waitText(page, '#password-form .error', /^Wrong email address or password\.$/);
  }
  // Locked: even the right password is refused, and the page says for how long.
  const res = await signIn(page, email, pw1);
  assert.equal(res.status(), 429);
  const text = await waitText(page, '#password-form .error', /locked/);
  assert.match(text, /Try again in 30 minutes/, text);
  assert.doesNotMatch(text, /Wrong/);
  await shot(page, 'sign-in-locked');

  checkClean(page);
  await page.context().close();
});

test('the database goes away: the page says the service is unavailable, and the same password signs in after', async () => {
  const email = unique('dora');
  await createUser(email, pw1);
  const page = await newPage(browser);
  await page.goto(BASE + '/');

  await cutDatabase();
  try {
    for (let i = 1; i <= 2; i++) {
      const res = await signIn(page, email, pw1);
      assert.equal(res.status(), 503);
      const text = await waitText(page, '#password-form .error', /service is unavailable/);
      assert.equal(text, 'The service is unavailable right now. Try again in a moment.');
    }
    await shot(page, 'sign-in-unavailable');
  } finally {
    await restoreDatabase();
  }
  // The outage counted nothing toward the lockout: the same password works.
  const res = await signIn(page, email, pw1);
  assert.equal(res.status(), 200);
  await page.waitForURL(BASE + '/account');
  assert.equal(await textOf(page, '#p-email'), email);

  checkClean(page);
  await page.context().close();
});

test('sign-up closes at the daily cap', async () => {
  const page = await newPage(browser);
  await page.goto(CAPPED + '/signup');
  assert.ok(await page.locator('#closed').isHidden());
  await page.fill('#signup-form input[name=email]', unique('cap'));
  await page.fill('#signup-form input[name=password]', pw1);
  await submit(page, '#signup-form', '/api/v1/auth/register');
  await page.locator('#check-mail').waitFor();

  const status = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/signup-status'));
  await page.goto(CAPPED + '/signup');
  assert.equal((await (await status).json()).open, false);
  await waitText(page, '#closed', /Sign-up is closed for today/);
  assert.ok(await page.locator('#signup-form').isHidden(), 'no form to fill when sign-up is closed');
  await shot(page, 'sign-up-closed');

  checkClean(page);
  await page.context().close();
});

test('the passkey button appears only after the capability probe says yes, and never flashes', async () => {
  for (const available of [false, true]) {
    const page = await newPage(browser);
    // Record every moment the button's box is shown, from the first paint on.
    await page.addInitScript(() => {
      window.passkeyShown = [];
      document.addEventListener('DOMContentLoaded', () => {
        const box = document.getElementById('passkey');
        window.passkeyShown.push(!box.hidden);
        new MutationObserver(() => window.passkeyShown.push(!box.hidden)).observe(box, { attributes: true });
      });
    });
    let answer;
    const held = new Promise((r) => { answer = r; });
    await page.route('**/api/v1/auth/passkeys/capability', async (route) => {
      await held;
      await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ available }) });
    });
    await page.goto(BASE + '/');
    await page.locator('#password-form').waitFor();
    assert.ok(await page.locator('#passkey').isHidden(), 'hidden while the probe is out');
    const answered = page.waitForResponse((r) => r.url().endsWith('/capability'));
    answer();
    await answered;
    if (available) {
      await page.locator('#passkey-button').waitFor({ state: 'visible' });
    } else {
      await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
      assert.ok(await page.locator('#passkey').isHidden());
    }
    // Hidden at the first paint; shown, if at all, only once the answer said so.
    const shown = await page.evaluate(() => window.passkeyShown);
    assert.equal(shown[0], false, 'hidden when the document is parsed');
    assert.equal(shown.includes(true), available, `box states ${JSON.stringify(shown)}`);
    checkClean(page);
    await page.context().close();
  }
});

test('an invitation link, signing in on the way; then the account page: name, email change, vault, deletion', async () => {
  const owner = unique('olga');
  const email = unique('ivan');
  const newEmail = unique('ivan.new');
  await createUser(owner, pw1);
  await createUser(email, pw1);
  const { accessToken } = await api(BASE, 'POST', '/api/v1/auth/login', { email: owner, password: pw1 });
  const { guild } = await api(BASE, 'POST', '/api/v1/guilds', { name: 'Riverside Choir', type: 'club' }, accessToken);
  await api(BASE, 'POST', `/api/v1/guilds/${guild.id}/invitations`, { email, role: 'member' }, accessToken);

  const page = await newPage(browser);
  const inv = await mail(email, 'accept-invitation');
  await page.goto(inv.link);
  await page.locator('#signin-needed').waitFor();
  assert.ok(!page.url().includes('token='), 'the page removed the token from the address bar');
  await page.click('#signin-link');
  await page.waitForURL((u) => u.pathname === '/' && u.searchParams.get('next') === 'accept-invitation');
  await signIn(page, email, pw1);
  await page.waitForURL((u) => u.pathname === '/accept-invitation');
  await submit(page, '#accept-form', `/api/v1/guilds/invitations/${new URL(inv.link).searchParams.get('token')}/accept`);
  await waitText(page, '#done', /You joined “Riverside Choir” as member/);
  await shot(page, 'accept-invitation');

  await page.goto(BASE + '/account');
  await page.locator('#p-email').waitFor();
  await page.fill('#profile-form input[name=name]', 'Ivan Petrov');
  await submit(page, '#profile-form', '/api/v1/auth/profile');
  await waitText(page, '#p-name', /Ivan Petrov/);
  assert.match(await textOf(page, '#v-exists'), /not set up yet/);

  await page.fill('#email-form input[name=newEmail]', newEmail);
  await page.fill('#email-form input[name=password]', pw1);
  await submit(page, '#email-form', '/api/v1/auth/change-email');
  await waitText(page, '#email-form .ok', /We sent a link/);
  const m = await mail(newEmail, 'confirm-email-change');
  await page.goto(m.link);
  await waitText(page, '#done', new RegExp(`now ${newEmail.replace(/[.+]/g, '\\$&')}`));
  await shot(page, 'confirm-email-change');
  await page.goto(BASE + '/account');
  await waitText(page, '#p-email', new RegExp(newEmail.replace(/[.+]/g, '\\$&')));
  await page.locator('#vault-facts').waitFor();
  await shot(page, 'account-after-changes');

  await page.fill('#delete-form input[name=password]', pw1);
  await page.click('#delete-form button[type=submit]');
  await waitText(page, '#delete-form .error', /confirmation/);
  await page.check('#delete-form input[name=sure]');
  await submit(page, '#delete-form', '/api/v1/auth/account');
  await page.waitForURL((u) => u.searchParams.get('reason') === 'deleted');
  await waitText(page, '#notice', /Your account was deleted/);
  await signIn(page, newEmail, pw1);
  await waitText(page, '#password-form .error', /Wrong email address or password/);
  await shot(page, 'sign-in-after-deletion');

  checkClean(page);
  await page.context().close();
});

test('a passkey: added on the account page, then sign-in with it alone, no email typed', async () => {
  const email = unique('pia');
  await createUser(email, pw1);
  const page = await newPage(browser);
  // Chromium's virtual authenticator (DevTools WebAuthn domain): a
  // platform authenticator with resident keys that verifies the user.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });

  await page.goto(BASE + '/');
  await page.locator('#passkey-button').waitFor({ state: 'visible' }); // the real server says passkeys are available
  await signIn(page, email, pw1);
  await page.waitForURL(BASE + '/account');
  await page.locator('#passkeys').waitFor({ state: 'visible' });
  await waitText(page, '#passkey-list', /No passkey yet/);

  await page.fill('#passkey-add-form input[name=name]', 'Test laptop');
  const added = await submit(page, '#passkey-add-form', '/api/v1/auth/passkeys/register/verify');
  assert.equal(added.status(), 201);
  await waitText(page, '#passkey-add-form .ok', /Passkey added/);
  await waitText(page, '#passkey-list', /Test laptop/);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential: sign-in needs no email');

  await page.fill('#passkey-list li input[name=name]', 'Work laptop');
  const renamed = page.waitForResponse((r) => r.request().method() === 'PATCH');
  await page.click('#passkey-list li button[type=submit]');
  assert.equal((await renamed).status(), 200);
  await waitText(page, '#passkey-list', /Work laptop/);
  await shot(page, 'account-passkey');

  await page.click('#signout');
  await page.waitForURL((u) => u.searchParams.get('reason') === 'signed-out');
  await page.locator('#passkey-button').waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#password-form input[name=email]'), '', 'no email typed');
  const verified = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/auth/passkeys/authenticate/verify');
  await page.click('#passkey-button');
  assert.equal((await verified).status(), 200);
  await page.waitForURL(BASE + '/account');
  assert.equal(await textOf(page, '#p-email'), email);
  await waitText(page, '#session-list li[data-current=true]', /with passkey/);
  assert.equal((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0].signCount > 0, true);

  const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE');
  await page.click('#passkey-list li button.danger');
  assert.equal((await deleted).status(), 204);
  await waitText(page, '#passkey-list', /No passkey yet/);

  checkClean(page);
  await page.context().close();
});

test('two-step verification: set up with a code from the secret; sign-in then asks for a code', async () => {
  const email = unique('tom');
  await createUser(email, pw1);
  const page = await newPage(browser);
  await page.goto(BASE + '/');
  await signIn(page, email, pw1);
  await page.waitForURL(BASE + '/account');
  await waitText(page, '#mfa-status', /^Off/);

  await page.fill('#mfa-enroll-form input[name=password]', pw1);
  await submit(page, '#mfa-enroll-form', '/api/v1/auth/mfa/totp/enroll');
  const secret = await textOf(page, '#mfa-secret');
  assert.match(await page.getAttribute('#mfa-qr', 'src'), /^data:image\/png;base64,/);
  await shot(page, 'account-mfa-setup');
  await page.fill('#mfa-confirm-form input[name=code]', totp(secret));
  await submit(page, '#mfa-confirm-form', '/api/v1/auth/mfa/totp/confirm');
  await page.locator('#mfa-codes').waitFor();
  const codes = await page.locator('#mfa-code-list code').allTextContents();
  assert.equal(codes.length, 10);
  await shot(page, 'account-mfa-recovery-codes');
  await page.click('#mfa-codes-done');
  await waitText(page, '#mfa-status', /^On: .* 10 recovery codes left/);

  await page.click('#signout');
  await page.waitForURL((u) => u.searchParams.get('reason') === 'signed-out');
  const res = await signIn(page, email, pw1);
  assert.equal((await res.json()).mfaRequired, true);
  await page.locator('#mfa-form').waitFor();
  assert.equal(await cookieNamed(page, 'mana_session'), undefined, 'no session before the second step');
  const wrong = String((Number(totp(secret)) + 1) % 1e6).padStart(6, '0');
  await page.fill('#mfa-form input[name=code]', wrong);
  assert.equal((await submit(page, '#mfa-form', '/api/v1/auth/mfa/verify')).status(), 401);
  await waitText(page, '#mfa-form .error', /That code is not valid/);
  await shot(page, 'sign-in-mfa');
  // The next time step's code: the confirmation spent this one (a code is
  // accepted once), and one step of skew is allowed.
  await page.fill('#mfa-form input[name=code]', totp(secret, Date.now() + 30_000));
  assert.equal((await submit(page, '#mfa-form', '/api/v1/auth/mfa/verify')).status(), 200);
  await page.waitForURL(BASE + '/account');
  assert.equal(await textOf(page, '#p-email'), email);

  // Off again, with a recovery code.
  await waitText(page, '#mfa-status', /^On/);
  await page.fill('#mfa-disable-form input[name=code]', codes[0]);
  const off = await submit(page, '#mfa-disable-form', '/api/v1/auth/mfa/totp');
  assert.equal(off.status(), 204);
  await waitText(page, '#mfa-status', /^Off/);

  checkClean(page);
  await page.context().close();
});
