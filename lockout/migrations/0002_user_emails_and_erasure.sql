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

-- The login attempts attributed to account p_user whose attributed
-- addresses are p_emails (the one it holds now and earlier ones no other
-- account holds now, see lockout.Service.Addresses): the attempts made on
-- an address while the account held it, and those made on one of p_emails
-- while no account held it (a guess before the signup, a try after a
-- change). An attempt made while another account held the address is that
-- account's. Export and erasure read the same definition.
CREATE FUNCTION auth.login_attempts_of(p_user uuid, p_emails text[]) RETURNS SETOF auth.login_attempts
LANGUAGE sql STABLE AS $$
  SELECT a.* FROM auth.login_attempts a
  WHERE a.email IN (SELECT h.email FROM auth.user_emails h WHERE h.user_id = p_user)
    AND (EXISTS (SELECT 1 FROM auth.user_emails h
                 WHERE h.user_id = p_user AND h.email = a.email
                   AND a.attempted_at >= h.held_from AND (h.held_until IS NULL OR a.attempted_at < h.held_until))
         OR (a.email = ANY (p_emails)
             AND NOT EXISTS (SELECT 1 FROM auth.user_emails o
                             WHERE o.email = a.email AND o.user_id <> p_user
                               AND a.attempted_at >= o.held_from AND (o.held_until IS NULL OR a.attempted_at < o.held_until))))
$$;

-- Erasure of an account's sign-in records, in the transaction that
-- deletes the account: its login attempts and the lockout counters of its
-- addresses are deleted, its security events anonymised (they keep type
-- and time, lose user id, IP address, user agent and metadata). It runs as
-- the owner: the runtime role itself still can neither delete a login
-- attempt nor change an event, so both logs stay append-only for it.
CREATE FUNCTION auth.erase_sign_in_records(p_user uuid, p_emails text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM auth.login_attempts WHERE id IN (SELECT id FROM auth.login_attempts_of(p_user, p_emails));
  DELETE FROM auth.lockouts WHERE email = ANY (p_emails);
  UPDATE auth.security_events SET user_id = NULL, ip_address = NULL, user_agent = NULL, metadata = NULL
   WHERE user_id = p_user;
END
$$;
REVOKE ALL ON FUNCTION auth.erase_sign_in_records(uuid, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.erase_sign_in_records(uuid, text[]) TO mana_auth_runtime;
