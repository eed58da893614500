package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// credentialRow is one row of auth.passkeys, the model of the bun store
// (listing, registering, renaming, deleting).
type credentialRow struct {
	bun.BaseModel `bun:"table:auth.passkeys,alias:p"`

	ID             uuid.UUID  `bun:"id,pk,type:uuid"`
	UserID         uuid.UUID  `bun:"user_id,type:uuid"`
	CredentialID   []byte     `bun:"credential_id"`
	PublicKey      []byte     `bun:"public_key"`
	SignCount      int64      `bun:"sign_count"`
	AAGUID         uuid.UUID  `bun:"aaguid,type:uuid"`
	Transports     string     `bun:"transports"`
	BackupEligible bool       `bun:"backup_eligible"`
	BackupState    bool       `bun:"backup_state"`
	Name           string     `bun:"name"`
	CreatedAt      time.Time  `bun:"created_at"`
	LastUsedAt     *time.Time `bun:"last_used_at"`
}

// Passkey is a credential as api.md lists it: never its public key.
type Passkey struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	// Transports are how the browser can reach the authenticator
	// ("internal", "hybrid", "usb", …); empty when it did not say.
	Transports []string `json:"transports"`
	// AAGUID names the authenticator model; the zero UUID when it did not
	// say.
	AAGUID uuid.UUID `json:"aaguid"`
}

func (r *credentialRow) passkey() Passkey {
	p := Passkey{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt.UTC(), Transports: splitTransports(r.Transports), AAGUID: r.AAGUID}
	if r.LastUsedAt != nil {
		t := r.LastUsedAt.UTC()
		p.LastUsedAt = &t
	}
	return p
}

// descriptor is the credential as options name it (allowCredentials,
// excludeCredentials).
func descriptor(id []byte, transports string) protocol.CredentialDescriptor {
	d := protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: id}
	for _, t := range splitTransports(transports) {
		d.Transport = append(d.Transport, protocol.AuthenticatorTransport(t))
	}
	return d
}

// joinTransports stores transports as the sorted, de-duplicated,
// comma-separated list the column holds, dropping any value that is not a
// plausible transport name (the browser's JSON is untrusted).
func joinTransports(ts []protocol.AuthenticatorTransport) string {
	var out []string
	for _, t := range ts {
		v := string(t)
		if transportName(v) && !slices.Contains(out, v) && len(out) < 16 {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func splitTransports(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// transportName matches the column's CHECK: a lower-case letter, then up
// to 31 lower-case letters, digits or hyphens.
func transportName(v string) bool {
	if len(v) < 1 || len(v) > 32 || v[0] < 'a' || v[0] > 'z' {
		return false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// storedCredential is what a sign-in needs of a credential: read on the
// hot path with pgx, joined with its owner's address (the gate's key).
type storedCredential struct {
	id             uuid.UUID
	userID         uuid.UUID
	publicKey      []byte
	signCount      uint32
	backupEligible bool
	backupState    bool
	email          string
}

// findCredential looks a credential up by its id; nil when nobody
// registered it.
func (s *Service) findCredential(ctx context.Context, credentialID []byte) (*storedCredential, error) {
	var c storedCredential
	var count int64
	err := s.pool.QueryRow(ctx, `SELECT p.id, p.user_id, p.public_key, p.sign_count, p.backup_eligible, p.backup_state, u.email
		FROM auth.passkeys p JOIN auth.users u ON u.id = p.user_id WHERE p.credential_id = $1`, credentialID).
		Scan(&c.id, &c.userID, &c.publicKey, &count, &c.backupEligible, &c.backupState, &c.email)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: find credential: %w", err)
	}
	c.signCount = uint32(count) // #nosec G115 -- the column's CHECK keeps it in range
	return &c, nil
}

// ceremony names a challenge's ceremony in auth.passkey_challenges.
type ceremony string

const (
	ceremonyRegister     ceremony = "register"
	ceremonyAuthenticate ceremony = "authenticate"
)

// saveChallenge stores the session of a ceremony just begun and returns
// its id. The same statement deletes up to 100 challenges that have
// expired (spent or not), so the table holds about five minutes of
// ceremonies without a sweeper; FOR UPDATE SKIP LOCKED keeps concurrent
// options calls from waiting on each other's deletes.
func (s *Service) saveChallenge(ctx context.Context, c ceremony, userID uuid.UUID, sess *webauthn.SessionData) (uuid.UUID, error) {
	id, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return uuid.Nil, fmt.Errorf("passkey: challenge id: %w", err)
	}
	raw, err := json.Marshal(sess)
	if err != nil {
		return uuid.Nil, fmt.Errorf("passkey: encode challenge: %w", err)
	}
	var owner any
	if userID != uuid.Nil {
		owner = userID
	}
	now := s.now().UTC()
	_, err = s.pool.Exec(ctx, `WITH expired AS (
		  DELETE FROM auth.passkey_challenges WHERE id IN (
		    SELECT id FROM auth.passkey_challenges WHERE expires_at <= $5
		    ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED))
		INSERT INTO auth.passkey_challenges (id, ceremony, user_id, session, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, string(c), owner, string(raw), now, now.Add(ChallengeTTL)) // JSON as text: []byte is bytea in pgx's exec mode
	if err != nil {
		return uuid.Nil, fmt.Errorf("passkey: save challenge: %w", err)
	}
	return id, nil
}

// spendChallenge marks the challenge used, in one conditional UPDATE, and
// returns its session: only when it exists, belongs to ceremony c (and,
// when userID is set, to that user), has not been used and has not
// expired. ok is false otherwise, and nothing changed.
func (s *Service) spendChallenge(ctx context.Context, id uuid.UUID, c ceremony, userID uuid.UUID) (sess webauthn.SessionData, ok bool, err error) {
	var bound any
	if userID != uuid.Nil {
		bound = userID
	}
	var raw []byte
	err = s.pool.QueryRow(ctx, `UPDATE auth.passkey_challenges SET used_at = $3
		WHERE id = $1 AND ceremony = $2 AND used_at IS NULL AND expires_at > $3
		  AND ($4::uuid IS NULL OR user_id = $4)
		RETURNING session`, id, string(c), s.now().UTC(), bound).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, false, nil
	}
	if err != nil {
		return sess, false, fmt.Errorf("passkey: spend challenge: %w", err)
	}
	if err := json.Unmarshal(raw, &sess); err != nil {
		return sess, false, fmt.Errorf("passkey: decode challenge %s: %w", id, err)
	}
	return sess, true, nil
}

// errCredentialGone: the credential was deleted while its sign-in ran.
var errCredentialGone = errors.New("passkey: the credential was deleted meanwhile")

// errCounterRaced: another sign-in stored a counter at least as high
// while this one ran; only a copy of the key signs twice with one count.
var errCounterRaced = errors.New("passkey: the signature counter moved past this assertion meanwhile")

// recordUse stores what a verified assertion tells of its credential —
// the signature counter, the backup state — and the time, inside tx (the
// transaction that starts the session). The row is locked first and the
// counter checked again, so of two assertions racing with one count, at
// most one is accepted.
func recordUse(ctx context.Context, tx pgx.Tx, id uuid.UUID, counter uint32, backupState bool, now time.Time) error {
	var stored int64
	err := tx.QueryRow(ctx, `SELECT sign_count FROM auth.passkeys WHERE id = $1 FOR UPDATE`, id).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return errCredentialGone
	}
	if err != nil {
		return fmt.Errorf("passkey: lock credential: %w", err)
	}
	if counterRegressed(uint32(stored), counter) { // #nosec G115 -- the sign_count column's CHECK keeps it within uint32
		return errCounterRaced
	}
	if _, err := tx.Exec(ctx, `UPDATE auth.passkeys SET sign_count = $2, backup_state = $3, last_used_at = $4 WHERE id = $1`,
		id, int64(counter), backupState, now); err != nil {
		return fmt.Errorf("passkey: record use: %w", err)
	}
	return nil
}

// counterRegressed reports a signature counter that did not move forward:
// both zero is an authenticator without a counter (synced passkeys), and
// fine; anything else must grow (WebAuthn §7.2 step 21).
func counterRegressed(stored, presented uint32) bool {
	return (stored != 0 || presented != 0) && presented <= stored
}
