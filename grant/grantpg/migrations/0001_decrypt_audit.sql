-- One row per attempt of the AI service to unwrap a mission key grant
-- (package grant, Unwrapper with grantpg.Store as its Auditor), successful
-- or not. Never key material.
--
-- user_id, mission_id, signature_kid and expires_at are what the grant
-- claimed; they are authenticated only when outcome is 'unwrapped' (or the
-- reason is 'expired'). user_id is NULL when the grant named no user that
-- exists (garbage, a forged id): such rows are visible to no user, only to
-- an operator role that bypasses row-level security. It references
-- auth.users so that a user's rows go with the user (account deletion,
-- GDPR erasure); the cascade runs with the table owner's rights, so the
-- runtime role needs no DELETE for it.
CREATE TABLE mana_ai.decrypt_audit (
  id            bigserial   PRIMARY KEY,
  user_id       uuid        REFERENCES auth.users (id) ON DELETE CASCADE,
  mission_id    text        CHECK (char_length(mission_id) BETWEEN 1 AND 200),
  signature_kid text        CHECK (octet_length(signature_kid) BETWEEN 1 AND 256),
  expires_at    timestamptz,
  outcome       text        NOT NULL CHECK (outcome IN ('unwrapped', 'refused', 'error')),
  reason        text        CHECK (reason IN ('not-configured', 'expired', 'malformed', 'wrap-rejected')),
  attempted_at  timestamptz NOT NULL,
  CONSTRAINT decrypt_audit_reason_iff_refused CHECK ((outcome = 'refused') = (reason IS NOT NULL)),
  CONSTRAINT decrypt_audit_unwrapped_is_complete
    CHECK (outcome <> 'unwrapped' OR (user_id IS NOT NULL AND mission_id IS NOT NULL
                                      AND signature_kid IS NOT NULL AND expires_at IS NOT NULL))
);
CREATE INDEX decrypt_audit_user_time ON mana_ai.decrypt_audit (user_id, attempted_at DESC, id DESC);

-- Row-level security, forced on the owner too, on the transaction-local
-- setting app.current_user_id (as auth.encryption_vaults): a user's rows
-- are readable only inside a transaction that set it to that user, and a
-- row is appended only under its own user — or with no user set, for a
-- row without one. After a transaction the setting reads back as ''
-- (not NULL), hence nullif.
ALTER TABLE mana_ai.decrypt_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE mana_ai.decrypt_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY decrypt_audit_read_own ON mana_ai.decrypt_audit FOR SELECT
  USING (user_id = nullif(current_setting('app.current_user_id', true), '')::uuid);
CREATE POLICY decrypt_audit_append ON mana_ai.decrypt_audit FOR INSERT
  WITH CHECK (user_id IS NOT DISTINCT FROM nullif(current_setting('app.current_user_id', true), '')::uuid);

-- Append-only for the runtime role: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON mana_ai.decrypt_audit TO mana_auth_runtime;
GRANT USAGE ON SEQUENCE mana_ai.decrypt_audit_id_seq TO mana_auth_runtime;
