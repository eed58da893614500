-- Second factors of sign-in (api.md "Multi-factor authentication").
--
-- One TOTP factor per user at most: pending from enrolment until its first
-- code confirms it, then active. The secret is never stored in clear: it is
-- sealed with AES-256-GCM under the vault's KEK kek_id, with associated
-- data binding it to its user, its factor id, the format and the KEK (see
-- mfa/secret.go). last_step is the last TOTP time step accepted, so that a
-- code is accepted once: a step is accepted only when it is greater.
CREATE TABLE auth.mfa_factors (
  id             uuid        PRIMARY KEY,
  user_id        uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  kind           text        NOT NULL CONSTRAINT mfa_factors_kind CHECK (kind IN ('totp')),
  status         text        NOT NULL CONSTRAINT mfa_factors_status CHECK (status IN ('pending', 'active')),
  secret_sealed  bytea       NOT NULL,
  secret_iv      bytea       NOT NULL,
  kek_id         text        NOT NULL,
  format_version integer     NOT NULL,
  last_step      bigint,
  created_at     timestamptz NOT NULL,
  confirmed_at   timestamptz,
  last_used_at   timestamptz,
  CONSTRAINT mfa_factors_one_per_kind UNIQUE (user_id, kind),
  CONSTRAINT mfa_factors_confirmed CHECK ((status = 'active') = (confirmed_at IS NOT NULL)),
  CONSTRAINT mfa_factors_iv_size CHECK (octet_length(secret_iv) = 12),
  -- 10 to 64 secret bytes and the 16-byte GCM tag.
  CONSTRAINT mfa_factors_sealed_size CHECK (octet_length(secret_sealed) BETWEEN 26 AND 80),
  CONSTRAINT mfa_factors_kek_id_format CHECK (kek_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  CONSTRAINT mfa_factors_version CHECK (format_version >= 1),
  CONSTRAINT mfa_factors_last_step CHECK (last_step IS NULL OR last_step >= 0)
);

-- Ten single-use recovery codes per active factor, stored as SHA-256 of
-- the user id and the normalised code (never the code). They go with their
-- factor.
CREATE TABLE auth.mfa_recovery_codes (
  id         bigserial   PRIMARY KEY,
  factor_id  uuid        NOT NULL REFERENCES auth.mfa_factors (id) ON DELETE CASCADE,
  user_id    uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  code_hash  bytea       NOT NULL CONSTRAINT mfa_recovery_codes_hash_size CHECK (octet_length(code_hash) = 32),
  created_at timestamptz NOT NULL,
  used_at    timestamptz,
  CONSTRAINT mfa_recovery_codes_unique UNIQUE (user_id, code_hash),
  CONSTRAINT mfa_recovery_codes_used_after CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX mfa_recovery_codes_factor ON auth.mfa_recovery_codes (factor_id) WHERE used_at IS NULL;

-- The second step of a sign-in: a right password (or a passkey without
-- user verification) for an account with an active factor answers an
-- mfaToken, stored only as its SHA-256, single use (used_at set by one
-- conditional UPDATE in the transaction that starts the session), short
-- lived and bound to its user and the method of the first step. Looked up
-- by token before the user is known, so not under row-level security; it
-- holds nothing secret.
CREATE TABLE auth.mfa_challenges (
  id         uuid        PRIMARY KEY,
  token_hash bytea       NOT NULL CONSTRAINT mfa_challenges_token_unique UNIQUE
                         CONSTRAINT mfa_challenges_hash_size CHECK (octet_length(token_hash) = 32),
  user_id    uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  method     text        NOT NULL CONSTRAINT mfa_challenges_method CHECK (method IN ('password', 'passkey')),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  CONSTRAINT mfa_challenges_lifetime CHECK (expires_at > created_at AND expires_at <= created_at + interval '1 hour'),
  CONSTRAINT mfa_challenges_used_after CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX mfa_challenges_user_expiry ON auth.mfa_challenges (user_id, expires_at);

-- Row-level security on the per-user secrets, forced on the owner too: a
-- row is visible and writable only inside a transaction that set
-- app.current_user_id to its user ('' after a transaction, hence nullif).
ALTER TABLE auth.mfa_factors ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.mfa_factors FORCE ROW LEVEL SECURITY;
CREATE POLICY mfa_factors_own ON auth.mfa_factors
  USING (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid)
  WITH CHECK (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid);

ALTER TABLE auth.mfa_recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.mfa_recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY mfa_recovery_codes_own ON auth.mfa_recovery_codes
  USING (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid)
  WITH CHECK (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid);

-- The owner reads every factor's KEK id for the inventory below (FORCE
-- applies to it too).
DO $$
BEGIN
  EXECUTE format('CREATE POLICY mfa_factors_kek_inventory ON auth.mfa_factors FOR SELECT TO %I USING (true)',
                 current_user);
END
$$;

-- Which KEK ids the stored secrets are sealed under, and how many each —
-- ids and counts only, never a row — so that the server can refuse to
-- report ready while a KEK they need is missing from its ring.
CREATE FUNCTION auth.mfa_factor_kek_ids() RETURNS TABLE (kek_id text, factors bigint)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT f.kek_id, count(*) FROM auth.mfa_factors f GROUP BY f.kek_id
$$;
REVOKE ALL ON FUNCTION auth.mfa_factor_kek_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.mfa_factor_kek_ids() TO mana_auth_runtime;

GRANT SELECT, INSERT, UPDATE, DELETE ON auth.mfa_factors TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE ON auth.mfa_recovery_codes TO mana_auth_runtime;
GRANT USAGE ON SEQUENCE auth.mfa_recovery_codes_id_seq TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.mfa_challenges TO mana_auth_runtime;

-- The users whose secrets are sealed under another KEK than the active
-- one, by user id after a given one — ids only, for the rewrap, which then
-- reads each user's row as that user.
CREATE FUNCTION auth.mfa_factor_users_off_kek(active_kek text, after_user uuid, max_users integer)
  RETURNS TABLE (user_id uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT DISTINCT f.user_id FROM auth.mfa_factors f
  WHERE f.kek_id <> active_kek AND f.user_id > after_user
  ORDER BY f.user_id LIMIT max_users
$$;
REVOKE ALL ON FUNCTION auth.mfa_factor_users_off_kek(text, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.mfa_factor_users_off_kek(text, uuid, integer) TO mana_auth_runtime;
