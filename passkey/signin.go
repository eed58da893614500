package passkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/dbtx"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
)

// SignInOptions is the answer of POST /authenticate/options: the
// challenge's id, to send back with the assertion, and what
// navigator.credentials.get() takes.
type SignInOptions struct {
	ChallengeID uuid.UUID                     `json:"challengeId"`
	Options     *protocol.CredentialAssertion `json:"options"`
}

// BeginSignIn starts a passkey sign-in. Without email it is a
// usernameless ceremony: no allowCredentials, the authenticator offers
// the discoverable credentials it holds and the assertion's user handle
// names the account. With email the options list that account's
// credentials; an address without passkeys (no account, or an account
// without any) gets the same shape with a stand-in list derived from the
// address (see decoy), the same on every call, so the answer reveals
// nothing about the account. Either way the challenge lives ChallengeTTL.
//
// Errors: RATE_LIMITED (OptionsRate per IP), VALIDATION_FAILED (email is
// not an address), SERVICE_UNAVAILABLE.
func (s *Service) BeginSignIn(ctx context.Context, email string, c manaauth.Client) (*SignInOptions, error) {
	if err := s.limitOptions(ctx, c.IP); err != nil {
		return nil, err
	}
	var (
		assertion *protocol.CredentialAssertion
		sess      *webauthn.SessionData
		owner     uuid.UUID
		err       error
	)
	if email == "" {
		assertion, sess, err = s.wa.BeginDiscoverableLogin()
	} else {
		var u *waUser
		if u, owner, err = s.signInUser(ctx, email); err != nil {
			return nil, err
		}
		assertion, sess, err = s.wa.BeginLogin(u)
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: begin sign-in: %w", err)
	}
	id, err := s.saveChallenge(ctx, ceremonyAuthenticate, owner, sess)
	if err != nil {
		return nil, err
	}
	return &SignInOptions{ChallengeID: id, Options: assertion}, nil
}

// signInUser is the account of email with its credentials, or the decoy
// of the address (owner uuid.Nil) when it has none. Both take the same
// one query.
func (s *Service) signInUser(ctx context.Context, email string) (*waUser, uuid.UUID, error) {
	email, err := manaauth.CanonicalEmail("email", email)
	if err != nil {
		return nil, uuid.Nil, err
	}
	type listed struct {
		owner      uuid.UUID
		id         []byte
		transports string
	}
	rows, err := s.pool.Query(ctx, `SELECT u.id, p.credential_id, p.transports FROM auth.users u
		JOIN auth.passkeys p ON p.user_id = u.id WHERE u.email = $1 ORDER BY p.created_at, p.id`, email)
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("passkey: credentials of an address: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (listed, error) {
		var l listed
		return l, row.Scan(&l.owner, &l.id, &l.transports)
	})
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("passkey: credentials of an address: %w", err)
	}
	if len(list) == 0 {
		handle, allow := decoy(s.cfg.DecoyKey, email)
		u := &waUser{id: handle}
		for _, d := range allow {
			u.credentials = append(u.credentials, webauthn.Credential{ID: d.CredentialID, Transport: d.Transport})
		}
		return u, uuid.Nil, nil
	}
	owner := list[0].owner
	u := &waUser{id: owner[:]}
	for _, l := range list {
		d := descriptor(l.id, l.transports)
		u.credentials = append(u.credentials, webauthn.Credential{ID: d.CredentialID, Transport: d.Transport})
	}
	return u, owner, nil
}

// SignInResult is the outcome of a verified sign-in: a token pair (the
// session started), or — for an assertion without user verification on
// an account with an active second factor — the challenge of that step.
type SignInResult struct {
	Tokens *manaauth.TokenPair
	MFA    *manaauth.MFAChallenge
}

// failure is why a sign-in verification was refused: reason goes to the
// log and the events, never to the client.
type failure struct {
	reason string
	clone  bool // a sign of a cloned authenticator: PASSKEY_CLONE_SUSPECTED
	cause  error
}

func (f *failure) Error() string {
	if f.cause != nil {
		return "passkey: " + f.reason + ": " + f.cause.Error()
	}
	return "passkey: " + f.reason
}

func (f *failure) Unwrap() error { return f.cause }

// FinishSignIn verifies an assertion and, when it holds, starts a session
// exactly as a password login does (manaauth.Service.StartSession): the
// token pair, LOGIN_SUCCESS with method passkey and a row in
// auth.login_attempts, with the credential's counter, backup state and
// last use stored in the same transaction. Email verification is not
// required. An assertion without user verification on an account with
// an active second factor answers that factor's challenge instead.
//
// In order: the credential is looked up by its id; its cooldown (or, for
// a credential nobody registered, the client IP's) is checked; the
// account passes the lockout gate; the challenge is spent (one
// conditional UPDATE: it must exist, be a sign-in challenge, unused and
// unexpired); the assertion is verified against it (type, challenge,
// origin, RP ID hash, user presence, user verification when the options
// required it, signature, extensions); the user handle, the backup
// eligibility and the signature counter are compared with the stored
// credential — a mismatch there, on a signature that verified, is a sign
// of a cloned authenticator (PASSKEY_CLONE_SUSPECTED). A failure is
// recorded (a row in auth.login_attempts, PASSKEY_LOGIN_FAILURE) without
// counting toward the password lockout, and counted against the
// credential (or IP): the failure that leaves no unit of FailureRate
// starts CooldownRate.
//
// Errors: PASSKEY_VERIFICATION_FAILED, RATE_LIMITED (the cooldown),
// ACCOUNT_LOCKED (the lockout gate), ACCOUNT_DISABLED,
// SERVICE_UNAVAILABLE (counts nothing).
func (s *Service) FinishSignIn(ctx context.Context, challengeID uuid.UUID, credential json.RawMessage, c manaauth.Client) (*SignInResult, error) {
	parsed, err := parseAssertion(credential)
	if err != nil {
		// Without a credential id the client's address is the key.
		return nil, s.refuseUnknown(ctx, ipKey(c.IP), challengeID, false, &failure{reason: "malformed", cause: err})
	}
	cred, err := s.findCredential(ctx, parsed.RawID)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, s.refuseUnknown(ctx, ipKey(c.IP), challengeID, true, &failure{reason: "unknown_credential"})
	}
	key := credentialKey(parsed.RawID)
	if err := s.checkCooldown(ctx, key); err != nil {
		return nil, err
	}
	ticket, err := s.accounts.Gate().Begin(ctx, lockout.Attempt{Email: cred.email, Method: lockout.Passkey,
		IP: c.IP, UserAgent: c.UserAgent})
	if err != nil {
		return nil, err
	}
	res, err := s.signIn(ctx, challengeID, parsed, cred, key, ticket, c)
	if err != nil {
		// Takes the admission back unless the check already recorded its
		// outcome (Finish then does nothing). A failure to release is an
		// outage: the answer becomes 503.
		if ferr := ticket.Finish(ctx, cred.userID, err); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
		return nil, err
	}
	return res, nil
}

// parseAssertion parses the browser's PublicKeyCredential JSON of
// navigator.credentials.get().
func parseAssertion(credential json.RawMessage) (*protocol.ParsedCredentialAssertionData, error) {
	p, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return nil, fmt.Errorf("passkey: parse assertion: %w", err)
	}
	return p, nil
}

// signIn is FinishSignIn once the account passed the gate.
func (s *Service) signIn(ctx context.Context, challengeID uuid.UUID, parsed *protocol.ParsedCredentialAssertionData,
	cred *storedCredential, key string, ticket *lockout.Ticket, c manaauth.Client) (*SignInResult, error) {
	sess, ok, err := s.spendChallenge(ctx, challengeID, ceremonyAuthenticate, uuid.Nil)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, s.refuse(ctx, key, ticket, cred, c, &failure{reason: "challenge"})
	}
	if f := s.checkAssertion(parsed, sess, cred); f != nil {
		return nil, s.refuse(ctx, key, ticket, cred, c, f)
	}
	data := parsed.Response.AuthenticatorData
	record := func(tx pgx.Tx) error {
		return recordUse(ctx, tx, cred.id, data.Counter, data.Flags.HasBackupState(), s.now().UTC())
	}
	// A passkey sign-in with user verification satisfies MFA by itself
	// (api.md); without it, an account with a second factor takes that
	// step too.
	if !data.Flags.UserVerified() {
		ch, err := s.accounts.MFAChallenge(ctx, cred.userID, lockout.Passkey, c)
		if err != nil {
			return nil, err
		}
		if ch != nil {
			if err := dbtx.Run(ctx, s.pool, s.logger, "passkey: record use", record); err != nil {
				return nil, s.raced(ctx, key, ticket, cred, c, data.Counter, err)
			}
			if err := ticket.Challenge(ctx, cred.userID); err != nil {
				return nil, err
			}
			return &SignInResult{MFA: ch}, nil
		}
	}
	pair, err := s.accounts.StartSession(ctx, manaauth.SignIn{UserID: cred.userID, Method: lockout.Passkey, Client: c,
		Ticket: ticket, InTx: func(ctx context.Context, tx pgx.Tx) error { return record(tx) }})
	if err != nil {
		if autherr.CodeOf(err) == autherr.InvalidCredentials {
			// The account was deleted while this sign-in ran.
			return nil, verificationFailed(err)
		}
		return nil, s.raced(ctx, key, ticket, cred, c, data.Counter, err)
	}
	return &SignInResult{Tokens: pair}, nil
}

// raced turns the errors of recordUse (the credential deleted, or its
// counter moved on, while the sign-in ran) into refusals; other errors
// pass.
func (s *Service) raced(ctx context.Context, key string, ticket *lockout.Ticket, cred *storedCredential, c manaauth.Client, counter uint32, err error) error {
	switch {
	case errors.Is(err, errCounterRaced):
		return s.refuse(ctx, key, ticket, cred, c, &failure{reason: "sign_count", clone: true,
			cause: fmt.Errorf("%w (presented %d)", err, counter)})
	case errors.Is(err, errCredentialGone):
		return s.refuse(ctx, key, ticket, cred, c, &failure{reason: "credential_deleted", cause: err})
	}
	return err
}

// checkAssertion verifies a parsed assertion against the spent
// challenge's session and the stored credential; nil when it holds.
//
// go-webauthn's ValidateLogin reports a foreign user handle or a changed
// backup eligibility as the same generic error as a forged signature,
// and before the signature is even checked; a clone is only a clone when
// the stored key signed. So the checks of ValidateLogin are made here in
// its order, with the library's own verification of the ceremony data
// and the signature (ParsedCredentialAssertionData.Verify), and the
// clone signals are judged after it.
func (s *Service) checkAssertion(p *protocol.ParsedCredentialAssertionData, sess webauthn.SessionData, cred *storedCredential) *failure {
	owner := cred.userID[:]
	if len(sess.UserID) > 0 {
		// Options for an address: the credential must be one they listed,
		// of the account they were for.
		if !bytes.Equal(sess.UserID, owner) || !containsID(sess.AllowedCredentialIDs, p.RawID) {
			return &failure{reason: "credential_not_allowed"}
		}
	} else if len(p.Response.UserHandle) == 0 {
		// A usernameless ceremony needs the handle to name the account.
		return &failure{reason: "no_user_handle"}
	}
	cfg := s.wa.Config
	if err := p.Verify(sess.Challenge, sess.GetRelyingPartyID(cfg.RPID), "", sess.GetOrigins(cfg.RPOrigins),
		cfg.RPOpaqueOrigins, cfg.RPTopOrigins, cfg.RPTopOriginVerificationMode, cfg.RPAllowCrossOrigin,
		sess.UserVerification == protocol.VerificationRequired, true, cred.publicKey, cfg.Signature); err != nil {
		return &failure{reason: "assertion", cause: err}
	}
	if err := p.ClientExtensionResults.Verify(sess.Extensions, protocol.AssertCeremony, cfg.ExtensionsUnsolicitedOutputPolicy); err != nil {
		return &failure{reason: "extensions", cause: err}
	}
	flags := p.Response.AuthenticatorData.Flags
	if flags.HasBackupState() && !flags.HasBackupEligible() {
		return &failure{reason: "backup_flags", cause: errors.New("backed up but not backup eligible")}
	}
	counter := p.Response.AuthenticatorData.Counter
	switch {
	case len(p.Response.UserHandle) > 0 && !bytes.Equal(p.Response.UserHandle, owner):
		return &failure{reason: "user_handle", clone: true, cause: errors.New("the user handle is not the credential owner's")}
	case flags.HasBackupEligible() != cred.backupEligible:
		return &failure{reason: "backup_eligible", clone: true,
			cause: fmt.Errorf("backup eligible %t, stored %t", flags.HasBackupEligible(), cred.backupEligible)}
	case counterRegressed(cred.signCount, counter):
		return &failure{reason: "sign_count", clone: true, cause: fmt.Errorf("counter %d, stored %d", counter, cred.signCount)}
	}
	return nil
}

func containsID(ids [][]byte, id []byte) bool {
	for _, x := range ids {
		if bytes.Equal(x, id) {
			return true
		}
	}
	return false
}

// refuse records a failed verification of a known credential and
// answers it: the attempt and PASSKEY_LOGIN_FAILURE through the gate's
// ticket (which takes its admission back: a passkey failure never counts
// toward the password lockout), PASSKEY_CLONE_SUSPECTED when f is a clone
// signal, then one failure against key. ticket may be finished already
// (StartSession finishes it on its errors); Reject then records nothing.
func (s *Service) refuse(ctx context.Context, key string, ticket *lockout.Ticket, cred *storedCredential, c manaauth.Client, f *failure) error {
	meta := map[string]any{"passkeyId": cred.id.String(), "reason": f.reason}
	if err := ticket.Reject(ctx, cred.userID, meta); err != nil {
		return err
	}
	if f.clone {
		err := dbtx.Run(ctx, s.pool, s.logger, "passkey: clone event", func(tx pgx.Tx) error {
			return s.accounts.Events().Insert(ctx, tx, lockout.Event{Type: lockout.PasskeyCloneSuspected, UserID: cred.userID,
				IP: c.IP, UserAgent: c.UserAgent, Metadata: meta})
		})
		if err != nil {
			return err
		}
	}
	if err := s.countFailure(ctx, key); err != nil {
		return err
	}
	return verificationFailed(f)
}

// refuseUnknown answers a verification whose credential nobody
// registered (or that does not parse), counted against the client's IP:
// after the IP's cooldown is checked, the challenge named is spent (each
// challenge serves one verification) when spend is set, and one failure
// is counted.
func (s *Service) refuseUnknown(ctx context.Context, key string, challengeID uuid.UUID, spend bool, f *failure) error {
	if err := s.checkCooldown(ctx, key); err != nil {
		return err
	}
	if spend {
		if _, _, err := s.spendChallenge(ctx, challengeID, ceremonyAuthenticate, uuid.Nil); err != nil {
			return err
		}
	}
	if err := s.countFailure(ctx, key); err != nil {
		return err
	}
	return verificationFailed(f)
}
