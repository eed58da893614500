-- The second step of a login (a TOTP or recovery code) passes the same
-- gate as the password and is recorded as its own method.
ALTER TABLE auth.login_attempts DROP CONSTRAINT login_attempts_method_check;
ALTER TABLE auth.login_attempts ADD CONSTRAINT login_attempts_method_check
  CHECK (method IN ('password', 'passkey', 'mfa'));
