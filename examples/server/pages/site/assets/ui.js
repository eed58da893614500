// Small DOM helpers shared by the pages. Text goes in through textContent
// only: nothing a server or a user wrote is ever parsed as HTML.

import { messageFor, SessionEnded, pageURL } from './api.js';

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// say puts text into el and shows it, or hides el when text is empty.
export function say(el, text) {
  if (!el) return;
  el.textContent = text || '';
  el.hidden = !text;
}

// sayError shows the readable message of err in el.
export function sayError(el, err) {
  say(el, messageFor(err));
}

// el builds an element with text and attributes.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'hidden') e.hidden = !!v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// toSignIn sends the browser to the sign-in page, telling it why and where
// to come back to.
export function toSignIn(reason, next) {
  const params = {};
  if (reason) params.reason = reason;
  if (next) params.next = next;
  location.assign(pageURL('', params));
}

// onSubmit runs fn with the form's fields when the form is submitted:
// the submit button is disabled meanwhile, the form's .error paragraph
// shows what went wrong and its .ok paragraph what fn returned (a string).
// A session that ended sends the browser to sign in.
//
// The HTML ships every submit button disabled, so nothing can be submitted
// natively (a GET would put a password into the URL) before this runs.
export function onSubmit(form, fn) {
  $$('button[type=submit]', form).forEach((b) => { b.disabled = false; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const error = $('.error', form);
    const ok = $('.ok', form);
    say(error, '');
    say(ok, '');
    const buttons = $$('button', form);
    buttons.forEach((b) => { b.disabled = true; });
    form.setAttribute('aria-busy', 'true');
    try {
      const fields = Object.fromEntries(new FormData(form).entries());
      const done = await fn(fields, ev.submitter);
      if (typeof done === 'string') say(ok, done);
    } catch (err) {
      if (err instanceof SessionEnded) {
        toSignIn('session-ended', location.pathname.replace(/^.*\//, ''));
        return;
      }
      sayError(error, err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      form.removeAttribute('aria-busy');
    }
  });
}

// tokenFromQuery reads ?token= and removes it from the address bar (and
// so from the history and any later copy of the URL).
export function tokenFromQuery() {
  const u = new URL(location.href);
  const t = u.searchParams.get('token') || '';
  if (t) {
    u.searchParams.delete('token');
    history.replaceState(null, '', u.pathname + u.search + u.hash);
  }
  return t;
}

// when renders an RFC 3339 time for people, in their locale.
export function when(ts) {
  if (!ts) return 'never';
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toLocaleString();
}
