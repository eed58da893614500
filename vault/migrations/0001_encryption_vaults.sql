-- One vault per user: the user's 32-byte master key, wrapped by the server
-- (AES-256-GCM under the KEK kek_id, associated data binding user, KEK and
-- format) and/or by the client under a recovery code. In zero-knowledge
-- mode only the recovery wrap exists.
CREATE TABLE auth.encryption_vaults (
  user_id                 uuid        PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  wrapped_mk              bytea,
  wrap_iv                 bytea,
  kek_id                  text,
  format_version          integer     NOT NULL,
  recovery_wrapped_mk     bytea,
  recovery_iv             bytea,
  recovery_format_version integer,
  recovery_set_at         timestamptz,
  zero_knowledge          boolean     NOT NULL DEFAULT false,
  created_at              timestamptz NOT NULL,
  rotated_at              timestamptz,
  CONSTRAINT encryption_vaults_has_wrap
    CHECK (wrapped_mk IS NOT NULL OR recovery_wrapped_mk IS NOT NULL),
  CONSTRAINT encryption_vaults_wrap_iv_pair
    CHECK ((wrapped_mk IS NULL) = (wrap_iv IS NULL) AND (wrapped_mk IS NULL) = (kek_id IS NULL)),
  CONSTRAINT encryption_vaults_recovery_pair
    CHECK ((recovery_wrapped_mk IS NULL) = (recovery_iv IS NULL)
       AND (recovery_wrapped_mk IS NULL) = (recovery_set_at IS NULL)
       AND (recovery_wrapped_mk IS NULL) = (recovery_format_version IS NULL)),
  CONSTRAINT encryption_vaults_zk_consistency
    CHECK (CASE WHEN zero_knowledge THEN wrapped_mk IS NULL AND recovery_wrapped_mk IS NOT NULL
                ELSE wrapped_mk IS NOT NULL END),
  CONSTRAINT encryption_vaults_iv_sizes
    CHECK ((wrap_iv IS NULL OR octet_length(wrap_iv) = 12) AND (recovery_iv IS NULL OR octet_length(recovery_iv) = 12)),
  CONSTRAINT encryption_vaults_wrap_sizes
    CHECK ((wrapped_mk IS NULL OR octet_length(wrapped_mk) BETWEEN 48 AND 1024)
       AND (recovery_wrapped_mk IS NULL OR octet_length(recovery_wrapped_mk) BETWEEN 48 AND 1024)),
  CONSTRAINT encryption_vaults_kek_id_format CHECK (kek_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  CONSTRAINT encryption_vaults_versions CHECK (format_version >= 1 AND (recovery_format_version IS NULL OR recovery_format_version >= 1))
);
CREATE INDEX encryption_vaults_kek ON auth.encryption_vaults (kek_id) WHERE kek_id IS NOT NULL;

-- Every vault action, failures included. Never key material. http_status
-- is NULL for operations outside HTTP (rewrap).
CREATE TABLE auth.encryption_vault_audit (
  id          bigserial   PRIMARY KEY,
  user_id     uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  action      text        NOT NULL CHECK (action IN ('init', 'key', 'rotate', 'recovery_set', 'recovery_clear',
                                                    'zk_enable', 'zk_disable', 'zero_knowledge', 'rewrap')),
  ip_address  inet,
  user_agent  text,
  http_status integer     CHECK (http_status BETWEEN 100 AND 599),
  context     jsonb,
  created_at  timestamptz NOT NULL
);
CREATE INDEX encryption_vault_audit_user_time ON auth.encryption_vault_audit (user_id, created_at DESC, id DESC);

-- Row-level security, forced on the owner too: a row is visible and
-- writable only inside a transaction that set app.current_user_id to its
-- user. After a transaction the setting reads back as '' (not NULL), hence
-- nullif; without it no row matches.
ALTER TABLE auth.encryption_vaults ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.encryption_vaults FORCE ROW LEVEL SECURITY;
CREATE POLICY encryption_vaults_own ON auth.encryption_vaults
  USING (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid)
  WITH CHECK (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid);

ALTER TABLE auth.encryption_vault_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.encryption_vault_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY encryption_vault_audit_read_own ON auth.encryption_vault_audit FOR SELECT
  USING (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid);
CREATE POLICY encryption_vault_audit_append_own ON auth.encryption_vault_audit FOR INSERT
  WITH CHECK (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid);

-- No DELETE on vaults (a vault goes with its user, by the cascade), and the
-- audit trail is append-only for the runtime role.
GRANT SELECT, INSERT, UPDATE ON auth.encryption_vaults TO mana_auth_runtime;
GRANT SELECT, INSERT ON auth.encryption_vault_audit TO mana_auth_runtime;
GRANT USAGE ON SEQUENCE auth.encryption_vault_audit_id_seq TO mana_auth_runtime;
