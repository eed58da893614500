// The pages' client of the JSON API: requests, the error envelope, a
// readable message per error code, and the web session (cookie + CSRF
// token traded for an access token that lives in memory only).

// base is the server's public root: this module lives at <base>/assets/.
export const base = new URL('../', import.meta.url);

// pageURL is the URL of a page ("account", "" for sign-in) with query
// parameters.
export function pageURL(name, params) {
  const u = new URL(name, base);
  for (const [k, v] of Object.entries(params || {})) u.searchParams.set(k, v);
  return u;
}

// ApiError is a non-2xx answer (or no answer at all) as the envelope
// describes it: code, message, remainingSeconds, details.
export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.remainingSeconds = extra.remainingSeconds || 0;
    this.details = extra.details || null;
    this.requestId = extra.requestId || '';
  }
}

// SessionEnded is thrown when the page needs the web session and there is
// none (never signed in, signed out, revoked, expired).
export class SessionEnded extends ApiError {
  constructor() {
    super(401, 'SESSION_ENDED', 'the session has ended');
    this.name = 'SessionEnded';
  }
}

async function errorFrom(res) {
  let env = null;
  if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
    try { env = await res.json(); } catch { env = null; }
  }
  const e = env && env.error;
  if (e && typeof e.code === 'string') {
    return new ApiError(res.status, e.code, e.message, e);
  }
  // Not our envelope: a proxy or load balancer answered. A 5xx from there
  // is an outage, never the user's fault.
  const retry = Number(res.headers.get('Retry-After')) || 0;
  if (res.status === 429) return new ApiError(429, 'RATE_LIMITED', '', { remainingSeconds: retry });
  if (res.status >= 500) return new ApiError(res.status, 'SERVICE_UNAVAILABLE', '');
  return new ApiError(res.status, res.status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', '');
}

// request sends one API call and answers the decoded JSON body (null for
// 204); a non-2xx answer throws ApiError.
export async function request(method, path, { body, bearer, csrf } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (bearer) headers.Authorization = 'Bearer ' + bearer;
  if (csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(new URL(path.replace(/^\//, ''), base), init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'no answer');
  }
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch {
    throw new ApiError(res.status, 'SERVICE_UNAVAILABLE', 'unreadable answer');
  }
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, { body });

// ---- the web session ----

// csrfToken is the session's CSRF token: the value of the mana_csrf cookie
// (a signed double-submit cookie; see README, "Hosted pages").
export function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'mana_csrf') return decodeURIComponent(v.join('='));
  }
  return '';
}

export const hasSession = () => csrfToken() !== '';

let access = null; // {token, until}: in memory only, never stored

// accessToken answers an access token of the web session, trading the
// session cookie at /session-to-token when there is none or it is about
// to expire. Throws SessionEnded when there is no session.
export async function accessToken({ fresh = false } = {}) {
  if (!fresh && access && Date.now() < access.until) return access.token;
  if (!trading) {
    access = null;
    trading = trade().finally(() => { trading = null; });
  }
  return trading;
}

let trading = null; // the one trade in flight, shared by concurrent callers

async function trade() {
  const csrf = csrfToken();
  if (!csrf) throw new SessionEnded();
  let pair;
  try {
    pair = await request('POST', '/api/v1/auth/session-to-token', { body: {}, csrf });
  } catch (e) {
    // 401: no such session (signed out, revoked, expired); 404: the
    // account is gone.
    if (e.status === 401 || e.status === 404) throw new SessionEnded();
    throw e;
  }
  access = { token: pair.accessToken, until: Date.now() + Math.max(0, (pair.expiresIn || 60) - 30) * 1000 };
  return access.token;
}

// forget drops the in-memory access token.
export function forget() { access = null; }

// authed calls a Bearer route with the session's access token. An expired
// token is traded again once; a revoked session ends the page's session.
export async function authed(method, path, body) {
  const call = async (fresh) => request(method, path, { body, bearer: await accessToken({ fresh }) });
  try {
    return await call(false);
  } catch (e) {
    if (e.status !== 401 || e instanceof SessionEnded) throw e;
    if (e.code === 'TOKEN_EXPIRED' || e.code === 'TOKEN_INVALID' || e.code === 'UNAUTHORIZED') {
      return await call(true); // a revoked session fails here with SessionEnded
    }
    throw e;
  }
}

// logout ends the web session on the server (cookie + CSRF header) and
// here.
export async function logout() {
  const csrf = csrfToken();
  forget();
  if (!csrf) return;
  try {
    await request('POST', '/api/v1/auth/logout', { body: {}, csrf });
  } catch (e) {
    if (e.status !== 401) throw e; // already gone: signed out all the same
  }
}

// ---- messages ----

// duration renders a number of seconds for people: "45 seconds",
// "1 minute", "30 minutes", "2 hours 5 minutes".
export function duration(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.ceil(s / 60);
  if (m < 60) return m === 1 ? '1 minute' : `${m} minutes`;
  const h = Math.floor(m / 60);
  const rest = m % 60;
  const hs = h === 1 ? '1 hour' : `${h} hours`;
  return rest ? `${hs} ${rest === 1 ? '1 minute' : `${rest} minutes`}` : hs;
}

const weak = {
  too_short: (d) => `That password is too short: use at least ${d.minLength || 8} characters.`,
  too_long: (d) => `That password is too long: use at most ${d.maxLength || 64} characters.`,
  common: () => 'That password is one of the most common ones. Choose a less guessable password.',
  contains_email: () => 'The password must not contain your email address.',
  invalid_utf8: () => 'That password contains characters that cannot be used.',
};

const forbidden = {
  csrf: 'Your session could not be confirmed. Reload the page and try again.',
  origin: 'This request came from another site and was refused.',
  email_not_verified: 'Confirm your email address first: open the link in the mail we sent you.',
  email_mismatch: 'This invitation was sent to another email address. Sign in with the invited address.',
};

const conflict = {
  accepted: 'This invitation has already been accepted.',
  revoked: 'This invitation was withdrawn.',
  expired: 'This invitation has expired. Ask for a new one.',
  already_member: 'You are already a member of this space.',
  last_owner: 'You are the last owner of a shared space. Hand over ownership or delete the space first.',
};

const fieldNames = {
  email: 'email address', password: 'password', newPassword: 'new password',
  currentPassword: 'current password', newEmail: 'new email address', name: 'name',
  code: 'code', recoveryCode: 'recovery code', token: 'link', repeat: 'repeated password',
  sure: 'confirmation',
};

// messages: a readable sentence for every code of api.md's table and the
// domain codes the pages can meet.
const messages = {
  BAD_REQUEST: () => 'The request could not be understood. Reload the page and try again.',
  VALIDATION_FAILED: (e) => {
    const fields = e.details && e.details.fields ? Object.keys(e.details.fields) : [];
    if (!fields.length) return 'Some of the values are not valid. Check them and try again.';
    return 'Check these fields: ' + fields.map((f) => `${fieldNames[f] || f} (${e.details.fields[f]})`).join('; ') + '.';
  },
  WEAK_PASSWORD: (e) => {
    const d = e.details || {};
    return (weak[d.reason] || (() => 'That password is not allowed. Choose another one.'))(d);
  },
  INVALID_CREDENTIALS: () => 'Wrong email address or password.',
  MFA_INVALID_CODE: () => 'That code is not valid. Enter the current code from your authenticator app.',
  REAUTH_REQUIRED: () => 'For your security, sign in again before doing this.',
  UNAUTHORIZED: () => 'You are not signed in. Sign in and try again.',
  TOKEN_INVALID: () => 'This link or session is not valid (it may have been used already).',
  TOKEN_EXPIRED: () => 'This link or session has expired.',
  PASSKEY_VERIFICATION_FAILED: () => 'The passkey could not be verified. Try again or use your password.',
  EMAIL_NOT_VERIFIED: () => 'Confirm your email address first: open the link in the mail we sent you.',
  ACCOUNT_DISABLED: () => 'This account has been disabled. Contact the operator of this service.',
  FORBIDDEN: (e) => forbidden[e.details && e.details.reason] || 'You are not allowed to do this.',
  NOT_FOUND: () => 'Not found: it may have been removed.',
  EMAIL_ALREADY_REGISTERED: () => 'An account with this email address exists already. Sign in, or reset the password.',
  CONFLICT: (e) => conflict[e.details && e.details.reason] || 'This conflicts with a change made meanwhile. Reload and try again.',
  PAYLOAD_TOO_LARGE: () => 'That is too much data to send.',
  ACCOUNT_LOCKED: (e) => `Too many failed sign-in attempts: this account is locked. Try again in ${duration(e.remainingSeconds || 60)}, or reset your password.`,
  RATE_LIMITED: (e) => `Too many requests. Try again in ${duration(e.remainingSeconds || 60)}.`,
  SIGNUP_LIMIT_REACHED: () => 'Sign-up is closed for today: the daily limit of new accounts is reached. Try again tomorrow.',
  INTERNAL: () => 'Something went wrong on our side. Try again; if it keeps happening, tell the operator.',
  SERVICE_UNAVAILABLE: () => 'The service is unavailable right now. Try again in a moment.',
  VAULT_NOT_FOUND: () => 'There is no encryption vault for this account yet.',
  ZK_ACTIVE: () => 'Zero-knowledge mode is active, so the server cannot do this.',
  ZK_ROTATE_FORBIDDEN: () => 'The key cannot be rotated by the server in zero-knowledge mode.',
  RECOVERY_WRAP_MISSING: () => 'Set up a recovery code first.',
  GRANT_NOT_CONFIGURED: () => 'This feature is not configured on this server.',
  NETWORK: () => 'The server cannot be reached. Check your connection and try again.',
  SESSION_ENDED: () => 'Your session has ended. Sign in again.',
};

// messageFor is the sentence the pages show for an error.
export function messageFor(err) {
  if (err && messages[err.code]) return messages[err.code](err);
  if (err instanceof ApiError && err.status >= 500) return messages.SERVICE_UNAVAILABLE(err);
  if (err instanceof ApiError) return messages.INTERNAL(err);
  console.error(err); // a bug in the page; say so rather than hide it
  return 'Something went wrong in this page. Reload it and try again.';
}

// codes lists the codes messageFor knows (the tests compare it with
// api.md's table).
export const codes = Object.keys(messages);
