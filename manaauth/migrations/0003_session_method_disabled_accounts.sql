-- How each session was authenticated (api.md "Sessions": password,
-- passkey, or a password completed by a second factor), and accounts an
-- operator disabled: a disabled account cannot sign in and its sessions
-- are revoked.
ALTER TABLE auth.sessions ADD COLUMN method text NOT NULL DEFAULT 'password'
  CONSTRAINT sessions_method CHECK (method IN ('password', 'passkey', 'mfa'));
ALTER TABLE auth.users ADD COLUMN disabled_at timestamptz;

-- Listing a user's sessions, newest first.
DROP INDEX auth.sessions_user;
CREATE INDEX sessions_user ON auth.sessions (user_id, created_at DESC) WHERE revoked_at IS NULL;
