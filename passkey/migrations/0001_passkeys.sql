-- WebAuthn credentials (api.md "Passkeys"). A credential belongs to one
-- account and goes with it. The public key is a COSE key, public by
-- nature: no row-level security here, since a sign-in looks the
-- credential up by its id before it knows whose it is.
CREATE TABLE auth.passkeys (
  id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id         uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  credential_id   bytea       NOT NULL,
  public_key      bytea       NOT NULL,
  -- The authenticator's signature counter (a 32-bit unsigned integer); 0
  -- for authenticators without one, as synced passkeys are.
  sign_count      bigint      NOT NULL DEFAULT 0,
  -- The authenticator model; the zero UUID when the authenticator did not
  -- say.
  aaguid          uuid        NOT NULL,
  -- How the browser can reach the authenticator: a comma-separated list
  -- of WebAuthn transports ("hybrid,internal"), '' when none was given.
  transports      text        NOT NULL DEFAULT '',
  backup_eligible boolean     NOT NULL,
  backup_state    boolean     NOT NULL,
  name            text        NOT NULL,
  created_at      timestamptz NOT NULL,
  last_used_at    timestamptz,
  CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id),
  CONSTRAINT passkeys_credential_id_size CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
  CONSTRAINT passkeys_public_key_size CHECK (octet_length(public_key) BETWEEN 1 AND 4096),
  CONSTRAINT passkeys_sign_count_range CHECK (sign_count BETWEEN 0 AND 4294967295),
  CONSTRAINT passkeys_transports_format CHECK (transports ~ '^([a-z][a-z0-9-]{0,31}(,[a-z][a-z0-9-]{0,31}){0,15})?$'),
  -- A credential cannot be backed up unless it may be (WebAuthn §6.1).
  CONSTRAINT passkeys_backup_flags CHECK (backup_eligible OR NOT backup_state),
  CONSTRAINT passkeys_name CHECK (name = btrim(name) AND char_length(name) BETWEEN 1 AND 64)
);
CREATE INDEX passkeys_user ON auth.passkeys (user_id, created_at, id);

-- The challenges of WebAuthn ceremonies: issued by the options routes,
-- spent by one conditional UPDATE of used_at in the verify routes, so that
-- any instance may verify what another issued and each is used once.
-- session is go-webauthn's SessionData (the challenge, the user handle
-- and the credentials it allows, the user verification it asked for).
-- user_id: the user who asked (registration, where the challenge is bound
-- to them) or the account named by email (sign-in); NULL for a
-- usernameless sign-in or an address without an account.
CREATE TABLE auth.passkey_challenges (
  id         uuid        PRIMARY KEY,
  ceremony   text        NOT NULL CHECK (ceremony IN ('register', 'authenticate')),
  user_id    uuid        REFERENCES auth.users (id) ON DELETE CASCADE,
  session    jsonb       NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  CONSTRAINT passkey_challenges_register_user CHECK (ceremony <> 'register' OR user_id IS NOT NULL),
  CONSTRAINT passkey_challenges_expiry CHECK (expires_at > created_at)
);
-- Expired challenges are deleted a batch at a time by later options calls.
CREATE INDEX passkey_challenges_expires ON auth.passkey_challenges (expires_at);
CREATE INDEX passkey_challenges_user ON auth.passkey_challenges (user_id) WHERE user_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON auth.passkeys TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.passkey_challenges TO mana_auth_runtime;
