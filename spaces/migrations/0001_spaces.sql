-- Spaces (organizations, "guilds" on the wire), their members and the
-- invitations into them. Every user has exactly one Personal space, made in
-- the registration transaction; the other types are made by users.
CREATE TABLE auth.spaces (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text        NOT NULL CHECK (name = btrim(name) AND char_length(name) BETWEEN 1 AND 100),
  type       text        NOT NULL CHECK (type IN ('personal', 'brand', 'club', 'family', 'team', 'practice')),
  created_at timestamptz NOT NULL,
  -- Who made the space; NULL once that account is deleted (the space stays
  -- with its other members).
  created_by uuid        REFERENCES auth.users (id) ON DELETE SET NULL
);
-- One Personal space per user, whatever the service does.
CREATE UNIQUE INDEX spaces_one_personal ON auth.spaces (created_by) WHERE type = 'personal';

-- Roles are stored only in their canonical spelling.
CREATE TABLE auth.space_members (
  space_id  uuid        NOT NULL REFERENCES auth.spaces (id) ON DELETE CASCADE,
  user_id   uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  role      text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  joined_at timestamptz NOT NULL,
  PRIMARY KEY (space_id, user_id)
);
CREATE INDEX space_members_user ON auth.space_members (user_id);

-- Invitations by email. The token is stored only as its SHA-256 and spent
-- by one conditional UPDATE (accepted_at). A new invitation of the same
-- address into the same space revokes the open one, so at most one is open.
-- The acceptor's account taking its invitation rows with it keeps no trace
-- of the address once the account is erased.
CREATE TABLE auth.space_invitations (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  space_id    uuid        NOT NULL REFERENCES auth.spaces (id) ON DELETE CASCADE,
  email       text        NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
  role        text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  token_hash  bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  invited_by  uuid        REFERENCES auth.users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  accepted_at timestamptz,
  revoked_at  timestamptz,
  accepted_by uuid        REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT space_invitations_expiry CHECK (expires_at > created_at),
  CONSTRAINT space_invitations_accepted CHECK ((accepted_at IS NULL) = (accepted_by IS NULL)),
  CONSTRAINT space_invitations_final CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
CREATE UNIQUE INDEX space_invitations_open ON auth.space_invitations (space_id, email)
  WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- A space nobody belongs to can never be reached again (every query goes
-- through the caller's membership): when its last member row goes — the
-- account of the only member was deleted, which is how a Personal space
-- follows its user — the space goes too, with its invitations.
CREATE FUNCTION auth.spaces_drop_memberless() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM auth.spaces s
   WHERE s.id IN (SELECT o.space_id FROM gone o)
     AND NOT EXISTS (SELECT 1 FROM auth.space_members m WHERE m.space_id = s.id);
  RETURN NULL;
END
$$;
CREATE TRIGGER space_members_drop_memberless AFTER DELETE ON auth.space_members
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION auth.spaces_drop_memberless();

GRANT SELECT, INSERT, UPDATE, DELETE ON auth.spaces TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.space_members TO mana_auth_runtime;
GRANT SELECT, INSERT, UPDATE ON auth.space_invitations TO mana_auth_runtime;
