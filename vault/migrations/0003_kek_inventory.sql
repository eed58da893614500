-- Which KEK ids the stored vaults are wrapped under, and how many each:
-- what the server compares with its key ring at start and in /readyz, so
-- that a KEK missing from the configuration (MANA_AUTH_KEK set to a new
-- key while rows are still under the old one) makes the server not ready
-- instead of answering every vault request with an error.
--
-- The runtime role cannot read other users' rows (row-level security), so
-- the count runs as the owner through a SECURITY DEFINER function that
-- returns ids and counts only — never a row. FORCE ROW LEVEL SECURITY
-- applies to the owner too, so the owner gets a read policy of its own
-- (it could always lift RLS with ALTER TABLE; the runtime role still
-- cannot).
DO $$
BEGIN
  EXECUTE format('CREATE POLICY encryption_vaults_kek_inventory ON auth.encryption_vaults FOR SELECT TO %I USING (true)',
                 current_user);
END
$$;

CREATE FUNCTION auth.encryption_vault_kek_ids() RETURNS TABLE (kek_id text, vaults bigint)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT v.kek_id, count(*) FROM auth.encryption_vaults v WHERE v.kek_id IS NOT NULL GROUP BY v.kek_id
$$;
REVOKE ALL ON FUNCTION auth.encryption_vault_kek_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.encryption_vault_kek_ids() TO mana_auth_runtime;
