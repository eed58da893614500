-- Every login attempt, whatever its outcome. id is the table's own serial:
-- nothing else is ever written into it. IP address and user agent are
-- NULL when the request did not tell.
CREATE TABLE auth.login_attempts (
  id           bigserial   PRIMARY KEY,
  email        text        NOT NULL,
  ip_address   inet,
  user_agent   text,
  successful   boolean     NOT NULL,
  method       text        NOT NULL CHECK (method IN ('password', 'passkey')),
  attempted_at timestamptz NOT NULL
);
CREATE INDEX login_attempts_email_time ON auth.login_attempts (email, attempted_at DESC);

-- The lockout counter, one row per canonical email (existing account or
-- not). failures holds the times of the credential failures (and of the
-- attempts being verified right now) inside the window; one INSERT … ON
-- CONFLICT DO UPDATE changes it, so concurrent attempts are serialised on
-- the row and counted exactly.
CREATE TABLE auth.lockouts (
  email        text          PRIMARY KEY,
  failures     timestamptz[] NOT NULL DEFAULT '{}',
  locked_until timestamptz,
  denied       boolean       NOT NULL DEFAULT false,
  updated_at   timestamptz   NOT NULL
);

-- Security-relevant actions. Every optional value is NULL when absent.
CREATE TABLE auth.security_events (
  id         bigserial   PRIMARY KEY,
  event_type text        NOT NULL CHECK (event_type ~ '^[A-Z][A-Z0-9_]*$'),
  user_id    uuid        REFERENCES auth.users (id) ON DELETE CASCADE,
  ip_address inet,
  user_agent text,
  metadata   jsonb,
  created_at timestamptz NOT NULL
);
CREATE INDEX security_events_user_time ON auth.security_events (user_id, created_at DESC, id DESC);

GRANT SELECT, INSERT ON auth.login_attempts TO mana_auth_runtime;
GRANT USAGE ON SEQUENCE auth.login_attempts_id_seq TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.lockouts TO mana_auth_runtime;
GRANT SELECT, INSERT ON auth.security_events TO mana_auth_runtime;
GRANT USAGE ON SEQUENCE auth.security_events_id_seq TO mana_auth_runtime;
