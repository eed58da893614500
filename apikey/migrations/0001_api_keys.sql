-- API keys: long-lived credentials a user gives to a service of their own
-- (api.md, API keys). The key itself ("sk_live_" and 43 base62 characters,
-- 256 random bits) is shown once at creation and stored only as its
-- SHA-256: validation looks the hash up through the unique index. prefix
-- is the key's first 12 characters, shown in lists so a user can tell keys
-- apart; it narrows a key down by 24 bits of its 256.
--
-- A revoked key keeps its row, marked revoked_at, so that validation can
-- answer "revoked" instead of "unknown"; it goes with its account. Rows
-- go with their user (ON DELETE CASCADE), in the transaction that deletes
-- the account.
CREATE FUNCTION auth.api_key_scopes_valid(scopes text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT cardinality(scopes) <= 32
     AND coalesce(bool_and(s IS NOT NULL AND s ~ '^[a-z][a-z0-9:._-]{0,63}$'), true)
     AND count(DISTINCT s) = count(s)
  FROM unnest(scopes) s
$$;

CREATE TABLE auth.api_keys (
  id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  name         text        NOT NULL CHECK (name = btrim(name) AND char_length(name) BETWEEN 1 AND 100),
  prefix       text        NOT NULL CHECK (prefix ~ '^sk_live_[0-9A-Za-z]{4}$'),
  key_hash     bytea       NOT NULL CHECK (octet_length(key_hash) = 32),
  scopes       text[]      NOT NULL DEFAULT '{}' CHECK (auth.api_key_scopes_valid(scopes)),
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
  CONSTRAINT api_keys_expiry CHECK (expires_at IS NULL OR expires_at > created_at),
  CONSTRAINT api_keys_revoked CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
-- Listing and the per-user cap (at most 50 live keys, counted under the
-- user row's lock).
CREATE INDEX api_keys_user ON auth.api_keys (user_id, created_at DESC);

-- The runtime role never deletes a key (revoking marks it); it updates
-- only the columns that change after creation.
GRANT SELECT, INSERT ON auth.api_keys TO mana_auth_runtime;
GRANT UPDATE (last_used_at, revoked_at) ON auth.api_keys TO mana_auth_runtime;
