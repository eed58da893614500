// WebAuthn between the API's JSON and the browser: the options the server
// sends (go-webauthn's CredentialCreation / CredentialAssertion, byte
// fields in base64url) become what navigator.credentials takes, and the
// PublicKeyCredential the browser answers becomes JSON with base64url
// byte fields.

export function supported() {
  return typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
}

function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const bin = atob(b64 + '==='.slice((b64.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toB64url(buf) {
  if (!buf) return null;
  const bytes = new Uint8Array(buf);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const descriptors = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

// creationOptions turns the API's registration options into the argument
// of navigator.credentials.create().
export function creationOptions(options) {
  const pk = options.publicKey;
  return {
    publicKey: {
      ...pk,
      challenge: fromB64url(pk.challenge),
      user: { ...pk.user, id: fromB64url(pk.user.id) },
      excludeCredentials: descriptors(pk.excludeCredentials),
    },
  };
}

// requestOptions turns the API's authentication options into the argument
// of navigator.credentials.get().
export function requestOptions(options) {
  const pk = options.publicKey;
  const out = { ...pk, challenge: fromB64url(pk.challenge) };
  if (pk.allowCredentials) out.allowCredentials = descriptors(pk.allowCredentials);
  return { publicKey: out };
}

// credentialJSON serialises what the browser answered for the API.
export function credentialJSON(cred) {
  const r = cred.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    response,
    clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
}

// cancelled tells a ceremony the user dismissed from a real failure.
export function cancelled(err) {
  return err && (err.name === 'NotAllowedError' || err.name === 'AbortError');
}
