// The account page: profile, sessions, password and email changes,
// passkeys, two-step verification, the vault's status and account
// deletion. Every call goes through the session's in-memory access token
// (api.js); each section loads on its own, so one failing service does not
// blank the page.

import { get, authed, accessToken, hasSession, logout, forget, SessionEnded } from './api.js';
import { $, say, sayError, el, onSubmit, toSignIn, when } from './ui.js';
import { supported, creationOptions, credentialJSON, cancelled } from './webauthn.js';

const auth = '/api/v1/auth';

// guard runs a section's loader; a session that ended sends the browser to
// sign in, any other error is shown in the section.
async function guard(where, fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof SessionEnded) {
      toSignIn('session-ended', 'account');
      return;
    }
    sayError(where, e);
  }
}

// ---- profile ----

async function loadProfile() {
  const { user } = await authed('GET', `${auth}/profile`);
  $('#p-email').textContent = user.email;
  $('#p-name').textContent = user.name || '—';
  $('#p-verified').textContent = user.emailVerified ? 'yes' : 'not yet';
  $('#p-created').textContent = when(user.createdAt);
  const name = $('#profile-form input[name=name]');
  if (!name.dataset.dirty) name.value = user.name || ''; // never overwrite what the user is typing
  $('#profile .facts').hidden = false;
  $('#loading').hidden = true;
}

// ---- sessions ----

// device names a user agent the way people say it ("Firefox on
// Windows"); the full string is the item's tooltip.
function device(ua) {
  if (!ua) return 'Unknown device';
  const browser = [['Edg/', 'Edge'], ['OPR/', 'Opera'], ['Firefox/', 'Firefox'], ['HeadlessChrome/', 'Headless Chrome'],
    ['Chrome/', 'Chrome'], ['Safari/', 'Safari'], ['curl/', 'curl']].find(([k]) => ua.includes(k));
  const os = [['Windows', 'Windows'], ['Android', 'Android'], ['iPhone', 'iPhone'], ['iPad', 'iPad'],
    ['Mac OS X', 'macOS'], ['CrOS', 'ChromeOS'], ['Linux', 'Linux']].find(([k]) => ua.includes(k));
  if (!browser) return ua.length > 60 ? ua.slice(0, 57) + '…' : ua;
  return os ? `${browser[1]} on ${os[1]}` : browser[1];
}

function describeSession(s) {
  const parts = [`signed in ${when(s.createdAt)}`];
  if (s.method) parts.push(`with ${s.method}`);
  if (s.ip) parts.push(`from ${s.ip}`);
  if (s.lastUsedAt) parts.push(`last used ${when(s.lastUsedAt)}`);
  return { ua: device(s.userAgent), rest: parts.join(', ') };
}

async function loadSessions() {
  const { sessions } = await authed('GET', `${auth}/sessions`);
  const list = $('#session-list');
  list.replaceChildren();
  for (const s of sessions) {
    const d = describeSession(s);
    const what = el('div', { class: 'what', title: s.userAgent || '' },
      el('span', { text: d.ua }), el('span', { class: 'muted', text: d.rest }));
    const actions = el('div', { class: 'actions' });
    if (s.current) {
      actions.append(el('span', { class: 'tag', text: 'this browser' }));
    } else {
      const b = el('button', { type: 'button', class: 'secondary small', text: 'Revoke', 'data-session': s.id });
      b.addEventListener('click', () => guard($('#revoke-others-form .error'), async () => {
        b.disabled = true;
        await authed('DELETE', `${auth}/sessions/${encodeURIComponent(s.id)}`);
        await loadSessions();
      }));
      actions.append(b);
    }
    list.append(el('li', { 'data-current': String(!!s.current) }, what, actions));
  }
  $('#revoke-others-form').hidden = sessions.length < 2;
}

// ---- passkeys ----

async function passkeysAvailable() {
  if (!supported()) return false;
  try {
    const c = await get(`${auth}/passkeys/capability`);
    return c && c.available === true;
  } catch {
    return false;
  }
}

async function loadPasskeys() {
  const { passkeys } = await authed('GET', `${auth}/passkeys`);
  const list = $('#passkey-list');
  list.replaceChildren();
  if (!passkeys.length) {
    list.append(el('li', { class: 'muted', text: 'No passkey yet.' }));
  }
  for (const p of passkeys) {
    const error = el('p', { class: 'error', role: 'alert', hidden: true });
    const rename = el('form', { class: 'actions', novalidate: '' },
      el('input', { name: 'name', value: p.name || '', 'aria-label': 'Passkey name', maxlength: '100' }),
      el('button', { type: 'submit', class: 'secondary small', text: 'Rename' }));
    const del = el('button', { type: 'button', class: 'danger small', text: 'Delete' });
    rename.addEventListener('submit', (ev) => {
      ev.preventDefault();
      guard(error, async () => {
        await authed('PATCH', `${auth}/passkeys/${encodeURIComponent(p.id)}`, { name: new FormData(rename).get('name').trim() });
        await loadPasskeys();
      });
    });
    del.addEventListener('click', () => guard(error, async () => {
      del.disabled = true;
      await authed('DELETE', `${auth}/passkeys/${encodeURIComponent(p.id)}`);
      await loadPasskeys();
    }));
    const what = el('div', { class: 'what' },
      el('span', { text: p.name || 'Passkey' }),
      el('span', { class: 'muted', text: `added ${when(p.createdAt)}, last used ${when(p.lastUsedAt)}` }), error);
    list.append(el('li', { 'data-passkey': p.id }, what, el('div', { class: 'actions' }, rename, del)));
  }
}

async function addPasskey(f) {
  const { challengeId, options } = await authed('POST', `${auth}/passkeys/register/options`, {});
  let cred;
  try {
    cred = await navigator.credentials.create(creationOptions(options));
  } catch (e) {
    if (cancelled(e)) return 'Cancelled: no passkey was added.';
    throw e;
  }
  const body = { challengeId, credential: credentialJSON(cred) };
  if (f.name.trim()) body.name = f.name.trim();
  await authed('POST', `${auth}/passkeys/register/verify`, body);
  $('#passkey-add-form input[name=name]').value = '';
  await loadPasskeys();
  return 'Passkey added. You can sign in with it now.';
}

// ---- two-step verification ----

async function loadMFA() {
  let st;
  try {
    st = await authed('GET', `${auth}/mfa/status`);
  } catch (e) {
    if (e.status === 404) return; // this server has no second factor: the section stays hidden
    throw e;
  }
  $('#mfa').hidden = false;
  $('#mfa-confirm-form').hidden = true;
  $('#mfa-codes').hidden = true;
  $('#mfa-enroll-form').hidden = st.totp;
  $('#mfa-disable-form').hidden = !st.totp;
  say($('#mfa-status'), st.totp
    ? `On: signing in asks for a code from your authenticator app. ${st.recoveryCodesLeft} recovery codes left.`
    : 'Off: signing in asks only for your password (or a passkey).');
}

function mfaForms() {
  onSubmit($('#mfa-enroll-form'), async (f) => {
    const res = await authed('POST', `${auth}/mfa/totp/enroll`, { password: f.password });
    $('#mfa-enroll-form').reset();
    $('#mfa-enroll-form').hidden = true;
    $('#mfa-qr').src = 'data:image/png;base64,' + res.qrPng;
    $('#mfa-secret').textContent = res.secret;
    $('#mfa-confirm-form').hidden = false;
    $('#mfa-confirm-form input[name=code]').focus();
  });
  onSubmit($('#mfa-confirm-form'), async (f) => {
    const res = await authed('POST', `${auth}/mfa/totp/confirm`, { code: f.code.replace(/\s+/g, '') });
    $('#mfa-confirm-form').reset();
    $('#mfa-confirm-form').hidden = true;
    $('#mfa-code-list').replaceChildren(...res.recoveryCodes.map((c) => el('code', { text: c })));
    $('#mfa-codes').hidden = false;
    say($('#mfa-status'), '');
  });
  $('#mfa-codes-done').addEventListener('click', () => {
    $('#mfa-code-list').replaceChildren();
    guard($('#page-error'), loadMFA);
  });
  onSubmit($('#mfa-disable-form'), async (f) => {
    const v = f.code.replace(/\s+/g, '');
    await authed('DELETE', `${auth}/mfa/totp`, /^\d{6}$/.test(v) ? { code: v } : { recoveryCode: f.code.trim() });
    $('#mfa-disable-form').reset();
    await loadMFA();
  });
}

// ---- vault ----

async function loadVault() {
  const st = await authed('GET', '/api/v1/me/encryption-vault/status');
  $('#v-exists').textContent = st.vaultExists ? 'set up' : 'not set up yet (an app sets it up when it first needs it)';
  $('#v-zk').textContent = st.zeroKnowledge ? 'on: only you can unlock your data' : 'off';
  $('#v-recovery').textContent = st.hasRecoveryWrap ? `set ${when(st.recoverySetAt)}` : 'none';
  $('#vault-facts').hidden = false;
}

// ---- wiring ----

async function main() {
  const hadSession = hasSession();
  try {
    await accessToken();
  } catch (e) {
    if (e instanceof SessionEnded) {
      toSignIn(hadSession ? 'session-ended' : '', 'account');
      return;
    }
    sayError($('#page-error'), e);
    $('#loading').hidden = true;
    return;
  }

  $('#signout').addEventListener('click', async () => {
    try {
      await logout();
      toSignIn('signed-out');
    } catch (e) {
      sayError($('#page-error'), e);
    }
  });

  const nameInput = $('#profile-form input[name=name]');
  nameInput.addEventListener('input', () => { nameInput.dataset.dirty = 'yes'; });
  onSubmit($('#profile-form'), async (f) => {
    await authed('POST', `${auth}/profile`, { name: f.name.trim() });
    delete nameInput.dataset.dirty;
    await loadProfile();
    return 'Saved.';
  });
  onSubmit($('#revoke-others-form'), async () => {
    await authed('POST', `${auth}/sessions/revoke-others`, {});
    await loadSessions();
    return 'Every other session is signed out.';
  });
  onSubmit($('#password-form'), async (f) => {
    await authed('POST', `${auth}/change-password`, { currentPassword: f.currentPassword, newPassword: f.newPassword });
    $('#password-form').reset();
    await loadSessions();
    return 'Password changed. Your other sessions were signed out.';
  });
  onSubmit($('#email-form'), async (f) => {
    const to = f.newEmail.trim();
    await authed('POST', `${auth}/change-email`, { newEmail: to, password: f.password });
    $('#email-form').reset();
    return `We sent a link to ${to}. Your address changes when you open it.`;
  });
  onSubmit($('#passkey-add-form'), addPasskey);
  mfaForms();
  onSubmit($('#delete-form'), async (f) => {
    if (f.sure !== 'yes') {
      throw Object.assign(new Error('unconfirmed'), { code: 'VALIDATION_FAILED', details: { fields: { sure: 'tick the box to confirm' } } });
    }
    await authed('DELETE', `${auth}/account`, { password: f.password });
    forget();
    toSignIn('deleted');
  });

  await Promise.all([
    guard($('#page-error'), loadProfile),
    guard($('#revoke-others-form .error'), loadSessions),
    guard($('#page-error'), loadMFA),
    guard($('#vault .error'), loadVault),
    guard($('#passkey-add-form .error'), async () => {
      if (await passkeysAvailable()) {
        $('#passkeys').hidden = false;
        await loadPasskeys();
      }
    }),
  ]);
}

main();
