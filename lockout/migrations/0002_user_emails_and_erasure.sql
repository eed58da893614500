-- Which addresses each account held, and when. Login attempts and lockout
-- counters are keyed by address, not by account (an unknown address locks
-- like a real one), so an export or an erasure finds an account's rows
-- through this history (api.md, GDPR: "by the user's current and earlier
-- emails"). A trigger on auth.users keeps it, whatever writes the address
-- (registration, a confirmed change, an operator by hand); it runs as the
-- table owner, so the runtime role only reads the history. held_until is
-- NULL for the address held now. Rows go with their account.
CREATE TABLE auth.user_emails (
  id         bigserial   PRIMARY KEY,
  user_id    uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  email      text        NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
  held_from  timestamptz NOT NULL,
  held_until timestamptz,
  CONSTRAINT user_emails_period CHECK (held_until IS NULL OR held_until >= held_from)
);
CREATE UNIQUE INDEX user_emails_current ON auth.user_emails (user_id) WHERE held_until IS NULL;
CREATE INDEX user_emails_email ON auth.user_emails (email, held_from);

-- The times are the account's own (created_at, updated_at), which the
-- service writes from its clock, the same clock that stamps the attempts.
CREATE FUNCTION auth.user_emails_track() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  since timestamptz;
BEGIN
  IF TG_OP = 'INSERT' THEN
    since := NEW.created_at;
  ELSE
    since := greatest(NEW.updated_at, OLD.created_at);
    UPDATE auth.user_emails SET held_until = greatest(since, held_from)
     WHERE user_id = NEW.id AND held_until IS NULL;
  END IF;
  INSERT INTO auth.user_emails (user_id, email, held_from) VALUES (NEW.id, NEW.email, since);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION auth.user_emails_track() FROM PUBLIC;
CREATE TRIGGER users_email_history_insert AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION auth.user_emails_track();
CREATE TRIGGER users_email_history_change AFTER UPDATE OF email ON auth.users
  FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email) EXECUTE FUNCTION auth.user_emails_track();

-- Accounts that exist already: their address is known from now on (their
-- earlier ones were never recorded).
INSERT INTO auth.user_emails (user_id, email, held_from)
SELECT id, email, created_at FROM auth.users;

GRANT SELECT ON auth.user_emails TO mana_auth_runtime;

-- Erasure: an account's login attempts are deleted, and its security events
-- are anonymised — they keep their type and time, and lose user id, IP
-- address, user agent and metadata. The runtime role may clear those four
-- columns and nothing else: the log stays append-only otherwise.
GRANT DELETE ON auth.login_attempts TO mana_auth_runtime;
GRANT UPDATE (user_id, ip_address, user_agent, metadata) ON auth.security_events TO mana_auth_runtime;

CREATE FUNCTION auth.security_events_anonymise_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.user_id IS NOT NULL OR NEW.ip_address IS NOT NULL OR NEW.user_agent IS NOT NULL OR NEW.metadata IS NOT NULL
     OR NEW.id <> OLD.id OR NEW.event_type <> OLD.event_type OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'auth.security_events: an update may only anonymise a row (clear user_id, ip_address, user_agent, metadata)'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER security_events_anonymise_only BEFORE UPDATE ON auth.security_events
  FOR EACH ROW EXECUTE FUNCTION auth.security_events_anonymise_only();
