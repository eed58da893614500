-- Erasure (GDPR): invitations addressed to an erased account's addresses
-- that nobody accepted are deleted with the account (an accepted one goes
-- with its acceptor through accepted_by's cascade). The runtime role may
-- delete invitation rows for that; the service never deletes them otherwise
-- (revoking sets revoked_at).
GRANT DELETE ON auth.space_invitations TO mana_auth_runtime;
