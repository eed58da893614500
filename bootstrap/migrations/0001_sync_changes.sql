-- mana_sync.sync_changes: the change log the sync service replays to
-- clients, one row per insert/update/delete of a record in an app's table.
-- Clients append their own rows through the sync service; this package
-- appends the server-side singletons (client_id 'system:bootstrap',
-- origin 'system'): the profile/userContext row of every user and the
-- kontext/kontextDoc row of every space. Columns as in api.md.
--
-- user_id cascades with the user, so deleting an account removes its rows
-- (a space's row carries its owner and goes with the owner). space_id has
-- no foreign key on purpose: spaces live in another package's table, which
-- this package must not depend on (a host may mount bootstrap without the
-- spaces of manaauth); what becomes of the rows of a deleted space (a
-- 'delete' row for the sync service, say) is decided by whoever deletes
-- the space.
CREATE TABLE mana_sync.sync_changes (
  id         bigserial   PRIMARY KEY,
  app_id     text        NOT NULL,
  table_name text        NOT NULL,
  record_id  text        NOT NULL,
  user_id    uuid        REFERENCES auth.users (id) ON DELETE CASCADE,
  space_id   uuid,
  op         text        NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  data       jsonb,
  field_meta jsonb,
  client_id  text,
  origin     text        NOT NULL CHECK (origin IN ('client', 'system')),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sync_changes_names_present CHECK (app_id <> '' AND table_name <> '' AND record_id <> ''),
  CONSTRAINT sync_changes_data_object CHECK (data IS NULL OR jsonb_typeof(data) = 'object'),
  CONSTRAINT sync_changes_field_meta_object CHECK (field_meta IS NULL OR jsonb_typeof(field_meta) = 'object'),
  -- A bootstrap row is always the system's first insert of its record.
  CONSTRAINT sync_changes_bootstrap_shape
    CHECK (client_id IS DISTINCT FROM 'system:bootstrap' OR (origin = 'system' AND op = 'insert'))
);

-- At most one bootstrap row per record, whoever inserts it and however many
-- do so at once: the bootstrapper's INSERT … ON CONFLICT DO NOTHING names
-- this index, so of ten concurrent calls one inserts and nine wait for it
-- and then insert nothing. An existence check before the insert could not
-- promise that (every caller can see "absent" before any commits).
CREATE UNIQUE INDEX sync_changes_bootstrap_once
  ON mana_sync.sync_changes (app_id, table_name, record_id)
  WHERE client_id = 'system:bootstrap';

-- Every change of one record (the bootstrapper looks for any earlier row of
-- the record, a client's included, before it adds its own).
CREATE INDEX sync_changes_record ON mana_sync.sync_changes (app_id, table_name, record_id);

-- Deleting a user cascades through this column.
CREATE INDEX sync_changes_user ON mana_sync.sync_changes (user_id) WHERE user_id IS NOT NULL;

-- The runtime role appends and reads; it never rewrites or deletes the log
-- (rows go with their user through the cascade, which runs as the owner).
-- No row-level security here: a space's rows are shared by its members,
-- and which client may read which change is the sync service's rule, not
-- the auth server's.
GRANT SELECT, INSERT ON mana_sync.sync_changes TO mana_auth_runtime;
GRANT USAGE ON SEQUENCE mana_sync.sync_changes_id_seq TO mana_auth_runtime;
