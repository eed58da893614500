package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/web"
)

// waUser is an account as go-webauthn sees it. Its user handle is the
// account's id, the 16 bytes of the UUID: an opaque value that names
// nothing personal.
type waUser struct {
	id          []byte
	name        string
	displayName string
	credentials []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.id }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.displayName }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.credentials }

// RegistrationOptions is the answer of POST /register/options: the
// challenge's id, to send back with the credential, and what
// navigator.credentials.create() takes.
type RegistrationOptions struct {
	ChallengeID uuid.UUID                    `json:"challengeId"`
	Options     *protocol.CredentialCreation `json:"options"`
}

// BeginRegistration starts adding a passkey to the account of userID,
// signed in with sessionID: creation options that exclude the account's
// credentials, ask for a discoverable credential and user verification
// (both preferred, or UV required by Config.UserVerification), and a
// challenge bound to the user that lives ChallengeTTL.
//
// Errors: RATE_LIMITED (OptionsRate per IP), REAUTH_REQUIRED (the session
// signed in more than 10 minutes ago), TOKEN_INVALID (the session is
// revoked), NOT_FOUND (the account is gone), SERVICE_UNAVAILABLE.
func (s *Service) BeginRegistration(ctx context.Context, userID, sessionID uuid.UUID, c manaauth.Client) (*RegistrationOptions, error) {
	if err := s.limitOptions(ctx, c.IP); err != nil {
		return nil, err
	}
	if err := s.accounts.RequireRecentAuth(ctx, userID, sessionID, 0); err != nil {
		return nil, err
	}
	u, err := s.accounts.Profile(ctx, userID)
	if err != nil {
		return nil, err
	}
	var existing []credentialRow
	if err := s.db.NewSelect().Model(&existing).Column("credential_id", "transports").
		Where("user_id = ?", userID).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("passkey: list credentials to exclude: %w", err)
	}
	exclude := make([]protocol.CredentialDescriptor, len(existing))
	for i, r := range existing {
		exclude[i] = descriptor(r.CredentialID, r.Transports)
	}
	display := u.Email
	if u.Name != nil && strings.TrimSpace(*u.Name) != "" {
		display = strings.TrimSpace(*u.Name)
	}
	creation, sess, err := s.wa.BeginRegistration(&waUser{id: userID[:], name: u.Email, displayName: display},
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	id, err := s.saveChallenge(ctx, ceremonyRegister, userID, sess)
	if err != nil {
		return nil, err
	}
	return &RegistrationOptions{ChallengeID: id, Options: creation}, nil
}

// Registration is the second step of adding a passkey.
type Registration struct {
	UserID      uuid.UUID // the caller, from the access token
	SessionID   uuid.UUID // the caller's session, from the access token
	ChallengeID uuid.UUID // from RegistrationOptions
	// Credential is the browser's PublicKeyCredential JSON of
	// navigator.credentials.create().
	Credential json.RawMessage
	// Name, when set, names the passkey (1–64 characters once trimmed);
	// otherwise it is named after its authenticator (Authenticator) or
	// DefaultName.
	Name   *string
	Client manaauth.Client
}

// FinishRegistration verifies the attestation against the challenge the
// user was given and stores the credential: id, public key, signature
// counter, AAGUID, transports, backup flags and name, with
// PASSKEY_REGISTERED in the same transaction. The account's address gets
// a notice mail. Once the session's recency is checked and the
// credential parses, the challenge is spent whatever the outcome, unless
// it is not an open registration challenge of this user (then nothing
// changes).
//
// Errors: VALIDATION_FAILED (name), REAUTH_REQUIRED, TOKEN_INVALID,
// PASSKEY_VERIFICATION_FAILED (no such open challenge of this user, or the
// attestation does not verify: wrong origin, RP ID, challenge, signature,
// UV missing when required, …), CONFLICT (the credential is registered
// already), NOT_FOUND (the account is gone), SERVICE_UNAVAILABLE.
func (s *Service) FinishRegistration(ctx context.Context, in Registration) (Passkey, error) {
	var name string
	if in.Name != nil {
		n, err := ValidName(*in.Name)
		if err != nil {
			return Passkey{}, web.Invalid(map[string]string{"name": err.Error()})
		}
		name = n
	}
	if err := s.accounts.RequireRecentAuth(ctx, in.UserID, in.SessionID, 0); err != nil {
		return Passkey{}, err
	}
	u, err := s.accounts.Profile(ctx, in.UserID)
	if err != nil {
		return Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(in.Credential)
	if err != nil {
		return Passkey{}, verificationFailed(fmt.Errorf("passkey: parse attestation: %w", err))
	}
	sess, ok, err := s.spendChallenge(ctx, in.ChallengeID, ceremonyRegister, in.UserID)
	if err != nil {
		return Passkey{}, err
	}
	if !ok {
		return Passkey{}, verificationFailed(errors.New("passkey: no open registration challenge of this user with that id"))
	}
	cred, err := s.wa.CreateCredential(&waUser{id: in.UserID[:]}, sess, parsed)
	if err != nil {
		return Passkey{}, verificationFailed(fmt.Errorf("passkey: attestation: %w", err))
	}
	aaguid, err := uuid.FromBytes(cred.Authenticator.AAGUID)
	if err != nil {
		return Passkey{}, verificationFailed(fmt.Errorf("passkey: AAGUID: %w", err))
	}
	provider := Authenticator(aaguid)
	if name == "" {
		name = provider
		if name == "" {
			name = DefaultName
		}
	}
	id, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return Passkey{}, fmt.Errorf("passkey: id: %w", err)
	}
	now := s.now().UTC()
	row := credentialRow{
		ID: id, UserID: in.UserID, CredentialID: cred.ID, PublicKey: cred.PublicKey,
		SignCount: int64(cred.Authenticator.SignCount), AAGUID: aaguid, Transports: joinTransports(cred.Transport),
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		Name: name, CreatedAt: now,
	}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return err
		}
		return s.accounts.Events().InsertSQL(ctx, tx.Tx, lockout.Event{Type: lockout.PasskeyRegistered, UserID: in.UserID,
			IP: in.Client.IP, UserAgent: in.Client.UserAgent,
			Metadata: map[string]any{"passkeyId": id.String(), "name": name, "aaguid": aaguid.String()}})
	})
	if err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "passkeys_credential_id_key" {
			return Passkey{}, autherr.Wrap(autherr.Conflict, err, "this passkey is registered already")
		}
		return Passkey{}, fmt.Errorf("passkey: store credential: %w", err)
	}
	s.outbox.Post(ctx, "passkey added", mail.PasskeyAdded(u.Email, provider, now))
	return row.passkey(), nil
}

// ValidName trims a passkey name and checks it: 1 to 64 characters
// (Unicode code points), no control or bidirectional formatting
// characters. The error says what is wrong, for the client.
func ValidName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return "", errors.New("not valid UTF-8")
	case n == 0:
		return "", errors.New("required")
	case n > 64:
		return "", errors.New("at most 64 characters")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control) || r == '\u2028' || r == '\u2029' {
			return "", errors.New("no control or formatting characters")
		}
	}
	return name, nil
}

// verificationFailed is the answer to a ceremony that did not verify:
// 401 PASSKEY_VERIFICATION_FAILED, the same vague message whatever the
// reason, which goes to the log with the cause.
func verificationFailed(cause error) *autherr.Error {
	return autherr.Wrap(autherr.PasskeyVerificationFailed, cause, "passkey verification failed")
}
