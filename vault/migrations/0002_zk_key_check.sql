-- A key check value for zero-knowledge mode: HMAC-SHA256(master key,
-- "mana-auth vault key check v1") truncated to 16 bytes, stored when the
-- mode is switched on (while the server still holds the key), compared
-- with the key a client sends to switch it off, and cleared then. A
-- one-way commitment: with a 256-bit random key it reveals nothing usable
-- about the key (see vault/doc.go).
--
-- Nullable: rows switched to zero-knowledge mode before this migration
-- have no check value, and switching them off accepts any 32-byte key as
-- before.
ALTER TABLE auth.encryption_vaults ADD COLUMN key_check bytea;

ALTER TABLE auth.encryption_vaults
  ADD CONSTRAINT encryption_vaults_key_check_size
    CHECK (key_check IS NULL OR octet_length(key_check) = 16),
  -- Only a zero-knowledge row has one: the standard shape verifies the key
  -- by unwrapping it.
  ADD CONSTRAINT encryption_vaults_key_check_zk_only
    CHECK (key_check IS NULL OR zero_knowledge);
