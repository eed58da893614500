// The pages before and around signing in: sign in (password, passkey, the
// second factor), sign up, and the pages the links in mails land on.

import { get, post, authed, accessToken, hasSession, pageURL, SessionEnded } from './api.js';
import { $, say, sayError, onSubmit, tokenFromQuery } from './ui.js';
import { supported, requestOptions, credentialJSON, cancelled } from './webauthn.js';

// Where a sign-in may send the browser: pages of this site only, by name.
const nextPages = new Set(['account', 'accept-invitation']);

function nextPage() {
  const n = new URLSearchParams(location.search).get('next');
  return pageURL(nextPages.has(n) ? n : 'account');
}

const reasons = {
  'session-ended': 'Your session has ended. Sign in again.',
  'signed-out': 'You are signed out.',
  deleted: 'Your account was deleted.',
};

// passkeyCapability asks the server whether passkeys can be used. The
// button stays hidden (as the HTML has it) until the answer says yes, so it
// never flashes; any failure leaves it hidden and the password form works.
async function passkeyCapability() {
  if (!supported()) return false;
  try {
    const c = await get('/api/v1/auth/passkeys/capability');
    return c && c.available === true;
  } catch {
    return false; // no passkeys on this server (or not now): password only
  }
}

async function signIn() {
  const params = new URLSearchParams(location.search);
  const reason = params.get('reason');
  say($('#notice'), reasons[reason] || '');
  const pwForm = $('#password-form');
  const mfaForm = $('#mfa-form');

  passkeyCapability().then((ok) => { $('#passkey').hidden = !ok; });

  // Already signed in: straight on.
  if (!reason && hasSession()) {
    accessToken().then(() => location.replace(nextPage()), () => {});
  }

  let mfaToken = '';
  const finish = () => location.assign(nextPage());

  onSubmit(pwForm, async (f) => {
    $('#resend').hidden = true;
    let res;
    try {
      res = await post('/api/v1/auth/login', { email: f.email.trim(), password: f.password });
    } catch (e) {
      if (e.code === 'EMAIL_NOT_VERIFIED') $('#resend').hidden = false;
      throw e;
    }
    if (res.mfaRequired) {
      mfaToken = res.mfaToken;
      const methods = res.methods || ['totp'];
      $('#use-recovery').hidden = !methods.includes('recovery');
      say($('#notice'), '');
      pwForm.hidden = true;
      $('#passkey').hidden = true;
      $('#signin-links').hidden = true;
      mfaForm.hidden = false;
      $('input[name=code]', mfaForm).focus();
      return;
    }
    finish();
  });

  $('#resend').addEventListener('click', async () => {
    const email = $('input[name=email]', pwForm).value.trim();
    try {
      await post('/api/v1/auth/resend-verification', { email });
      say($('.ok', pwForm), `If ${email} has an account that is not confirmed yet, a new confirmation mail is on its way.`);
    } catch (e) {
      sayError($('.error', pwForm), e);
    }
  });

  let recovery = false;
  $('#use-recovery').addEventListener('click', () => {
    recovery = !recovery;
    $('#code-label').hidden = recovery;
    $('#recovery-label').hidden = !recovery;
    $('#mfa-hint').textContent = recovery
      ? 'Enter one of the recovery codes you saved when you set up two-step verification.'
      : 'Enter the 6-digit code from your authenticator app.';
    $('#use-recovery').textContent = recovery ? 'Use the authenticator app instead' : 'Use a recovery code instead';
  });

  onSubmit(mfaForm, async (f) => {
    const body = recovery
      ? { mfaToken, recoveryCode: f.recoveryCode.trim() }
      : { mfaToken, code: f.code.replace(/\s+/g, '') };
    try {
      await post('/api/v1/auth/mfa/verify', body);
    } catch (e) {
      if (e.code === 'TOKEN_INVALID' || e.code === 'TOKEN_EXPIRED') {
        // The step is single use and short-lived: start again.
        mfaForm.hidden = true;
        pwForm.hidden = false;
        $('#signin-links').hidden = false;
        say($('#notice'), 'The sign-in took too long. Enter your password again.');
        return;
      }
      throw e;
    }
    finish();
  });

  $('#passkey-button').addEventListener('click', async () => {
    const error = $('#passkey-error');
    const button = $('#passkey-button');
    say(error, '');
    button.disabled = true;
    try {
      const { challengeId, options } = await post('/api/v1/auth/passkeys/authenticate/options', {});
      let cred;
      try {
        cred = await navigator.credentials.get(requestOptions(options));
      } catch (e) {
        if (cancelled(e)) return say(error, 'The passkey sign-in was cancelled.');
        throw e;
      }
      await post('/api/v1/auth/passkeys/authenticate/verify', { challengeId, credential: credentialJSON(cred) });
      finish();
    } catch (e) {
      sayError(error, e);
    } finally {
      button.disabled = false;
    }
  });
}

async function signUp() {
  const form = $('#signup-form');
  try {
    const st = await get('/api/v1/auth/signup-status');
    if (!st.open) {
      form.hidden = true;
      $('#closed').hidden = false;
    }
  } catch (e) {
    sayError($('.error', form), e);
  }
  onSubmit(form, async (f) => {
    const email = f.email.trim();
    const body = { email, password: f.password };
    if (f.name.trim()) body.name = f.name.trim();
    let res;
    try {
      res = await post('/api/v1/auth/register', body);
    } catch (e) {
      if (e.code === 'SIGNUP_LIMIT_REACHED') {
        form.hidden = true;
        $('#closed').hidden = false;
        return;
      }
      throw e;
    }
    if (res.accessToken) { // no verification required: signed in already
      location.assign(pageURL('account'));
      return;
    }
    form.hidden = true;
    say($('#check-mail-text'), `Almost done: we sent a mail to ${email}. Open the link in it to confirm your address, then sign in.`);
    $('#check-mail').hidden = false;
    $('#resend-form input[name=email]').value = email;
  });
  onSubmit($('#resend-form'), async (f) => {
    await post('/api/v1/auth/resend-verification', { email: f.email });
    return 'If the address is not confirmed yet, a new mail is on its way.';
  });
}

// redeem posts the token of a mail link to path and shows the outcome.
async function redeem(path, done) {
  const token = tokenFromQuery();
  try {
    if (!token) throw Object.assign(new Error('no token'), { code: 'TOKEN_INVALID' });
    const res = await post(path, { token });
    say($('#done'), done(res));
    return true;
  } catch (e) {
    sayError($('#failed'), e);
    return false;
  } finally {
    $('#working').hidden = true;
  }
}

async function verifyEmail() {
  const ok = await redeem('/api/v1/auth/verify-email', () => 'Your email address is confirmed. You can sign in now.');
  if (!ok) {
    const form = $('#resend-form');
    form.hidden = false;
    onSubmit(form, async (f) => {
      await post('/api/v1/auth/resend-verification', { email: f.email.trim() });
      return 'If the address has an account that is not confirmed yet, a new link is on its way.';
    });
  }
}

function confirmEmailChange() {
  return redeem('/api/v1/auth/verify-email',
    (res) => `Done: the email address of your account is now ${res.user.email}.`);
}

function forgotPassword() {
  onSubmit($('#forgot-form'), async (f) => {
    const email = f.email.trim();
    await post('/api/v1/auth/forgot-password', { email });
    return `If ${email} has an account, a mail with a link to choose a new password is on its way.`;
  });
}

function resetPassword() {
  const token = tokenFromQuery();
  const form = $('#reset-form');
  if (!token) {
    say($('.error', form), 'This link is incomplete. Open the link from the mail again, or ask for a new one.');
  }
  onSubmit(form, async (f) => {
    if (f.newPassword !== f.repeat) {
      throw Object.assign(new Error('mismatch'), { code: 'VALIDATION_FAILED', details: { fields: { repeat: 'does not match the new password' } } });
    }
    await post('/api/v1/auth/reset-password', { token, newPassword: f.newPassword });
    form.hidden = true;
    $('#done').hidden = false;
  });
}

// The invitation token waits in sessionStorage (this tab only) while the
// user signs in, so it never travels in another URL.
const invitationKey = 'mana.invitation';

async function acceptInvitation() {
  const fromLink = tokenFromQuery();
  if (fromLink) sessionStorage.setItem(invitationKey, fromLink);
  const token = sessionStorage.getItem(invitationKey) || '';
  const working = $('#working');
  if (!token) {
    working.hidden = true;
    say($('#failed'), 'This link is incomplete. Open the link from the invitation mail again.');
    return;
  }
  try {
    await accessToken();
  } catch (e) {
    working.hidden = true;
    if (e instanceof SessionEnded) {
      $('#signin-needed').hidden = false;
      $('#signin-link').href = pageURL('', { next: 'accept-invitation' }).href;
      return;
    }
    sayError($('#failed'), e);
    return;
  }
  working.hidden = true;
  const form = $('#accept-form');
  form.hidden = false;
  onSubmit(form, async () => {
    const res = await authed('POST', `/api/v1/guilds/invitations/${encodeURIComponent(token)}/accept`, {});
    sessionStorage.removeItem(invitationKey);
    form.hidden = true;
    say($('#done'), `You joined “${res.guild.name}” as ${res.role}.`);
  });
}

const pages = {
  signin: signIn,
  signup: signUp,
  'verify-email': verifyEmail,
  'confirm-email-change': confirmEmailChange,
  'forgot-password': forgotPassword,
  'reset-password': resetPassword,
  'accept-invitation': acceptInvitation,
};

pages[document.body.dataset.page]();
