-- Schemas every package builds on, and the role the services run their
-- queries as. The runtime role is deliberately weak: no SUPERUSER (which would
-- bypass every check), no BYPASSRLS (row-level security must apply to it), no
-- CREATEDB/CREATEROLE, and it owns no table (owners bypass RLS unless FORCE is
-- set). Tables are owned by the role that runs migrations.

CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS mana_sync;
CREATE SCHEMA IF NOT EXISTS mana_ai;

-- Roles are cluster-wide: another database on the same server may have made it
-- already, possibly at this very moment (duplicate_object, or unique_violation
-- when two CREATE ROLE statements race).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mana_auth_runtime') THEN
    BEGIN
      CREATE ROLE mana_auth_runtime LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- made concurrently by another migrator; the checks below still run
    END;
  END IF;
  -- A pre-existing role with dangerous attributes is corrected, never trusted.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mana_auth_runtime'
             AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb OR rolreplication)) THEN
    ALTER ROLE mana_auth_runtime NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA auth, mana_sync, mana_ai TO mana_auth_runtime;
-- Readiness compares the applied migrations with the embedded ones.
GRANT SELECT ON public.mana_auth_schema_migrations TO mana_auth_runtime;
