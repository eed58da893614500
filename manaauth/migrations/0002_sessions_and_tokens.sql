-- A session is one login (password, passkey or session-to-token) and the
-- refresh-token family it starts: revoking the session revokes the family.
-- cookie_hash is the SHA-256 of the web session cookie, when one was set.
CREATE TABLE auth.sessions (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id       uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  cookie_hash   bytea       UNIQUE CHECK (octet_length(cookie_hash) = 32),
  ip_address    inet,
  user_agent    text,
  created_at    timestamptz NOT NULL,
  last_used_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz,
  revoke_reason text,
  CONSTRAINT sessions_revoked_reason CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX sessions_user ON auth.sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens, stored only as SHA-256. Each refresh spends its token
-- (spent_at, by one conditional UPDATE) and creates the child.
CREATE TABLE auth.refresh_tokens (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id uuid        NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
  parent_id  uuid        REFERENCES auth.refresh_tokens (id) ON DELETE CASCADE,
  token_hash bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  spent_at   timestamptz
);
CREATE INDEX refresh_tokens_session ON auth.refresh_tokens (session_id);
CREATE UNIQUE INDEX refresh_tokens_one_child ON auth.refresh_tokens (parent_id) WHERE parent_id IS NOT NULL;

-- Single-use tokens mailed to the user, stored only as SHA-256 and bound to
-- their purpose. Issuing a new one voids the unused ones of the same purpose.
CREATE TABLE auth.one_time_tokens (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
  token_hash bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  new_email  text,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  voided_at  timestamptz,
  CONSTRAINT one_time_tokens_new_email CHECK ((purpose = 'change_email') = (new_email IS NOT NULL))
);
CREATE INDEX one_time_tokens_user_purpose ON auth.one_time_tokens (user_id, purpose) WHERE used_at IS NULL AND voided_at IS NULL;

-- Signups per UTC day, counted in the database so that every instance
-- agrees on the daily cap.
CREATE TABLE auth.signup_counts (
  day   date PRIMARY KEY,
  count int  NOT NULL CHECK (count >= 0)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON auth.sessions TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE ON auth.refresh_tokens TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE ON auth.one_time_tokens TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE ON auth.signup_counts TO mana_auth_runtime;
