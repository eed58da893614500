-- auth.users: one row per account. The email is stored canonical (trimmed,
-- lower-cased), so a plain UNIQUE constraint makes it unique
-- case-insensitively; the CHECK keeps any writer from storing another form.
CREATE TABLE auth.users (
  id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  email             text        NOT NULL,
  name              text,
  image             text,
  password_hash     text,
  email_verified_at timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_email_key UNIQUE (email),
  CONSTRAINT users_email_canonical CHECK (email = lower(btrim(email)) AND email <> ''),
  CONSTRAINT users_password_hash_phc CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%')
);

GRANT SELECT, INSERT, UPDATE, DELETE ON auth.users TO mana_auth_runtime;
