package mfa

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mana-how/mana-auth/internal/secret"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/vault"
)

// ChallengeTTL is how long an mfaToken lives by default (api.md: 5
// minutes).
const ChallengeTTL = 5 * time.Minute

// maxChallengeTTL is the longest lifetime the table accepts.
const maxChallengeTTL = time.Hour

// Methods are the ways to complete a challenge, as the login answer lists
// them.
var Methods = []string{"totp", "recovery"}

// ChallengesConfig configures NewChallenges.
type ChallengesConfig struct {
	Pool *pgxpool.Pool    // the runtime role; required
	TTL  time.Duration    // lifetime of an mfaToken; default ChallengeTTL, at most an hour
	Now  func() time.Time // default time.Now
	Rand io.Reader        // default crypto/rand.Reader
}

// Challenges starts the second step of sign-ins: it is the
// manaauth.SecondFactor a host wires into manaauth.Config. It needs only
// the database, so it is built before the account service, and the
// Service built after it (which needs the account service) completes what
// it starts: no cycle, and nothing set after construction.
type Challenges struct {
	pool *pgxpool.Pool
	ttl  time.Duration
	now  func() time.Time
	rand io.Reader
}

var _ manaauth.SecondFactor = (*Challenges)(nil)

// NewChallenges validates cfg.
func NewChallenges(cfg ChallengesConfig) (*Challenges, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("mfa: ChallengesConfig.Pool is required")
	case cfg.TTL < 0 || cfg.TTL > maxChallengeTTL:
		return nil, fmt.Errorf("mfa: ChallengesConfig.TTL %v: want 0 (default %v) up to %v", cfg.TTL, ChallengeTTL, maxChallengeTTL)
	}
	c := &Challenges{pool: cfg.Pool, ttl: cfg.TTL, now: cfg.Now, rand: cfg.Rand}
	if c.ttl == 0 {
		c.ttl = ChallengeTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	return c, nil
}

// Challenge starts the second step of a sign-in whose first step (method:
// a password, or a passkey without user verification) succeeded for
// userID: when the user has an active factor it stores a new mfaToken
// (256 bits from the random source, kept only as its SHA-256, single use,
// living TTL, bound to the user and the method) and returns it; nil when
// the user has none (a pending factor does not count). One round trip:
// the check and the insert are one statement.
//
// Errors: SERVICE_UNAVAILABLE.
func (c *Challenges) Challenge(ctx context.Context, userID uuid.UUID, method lockout.Method, _ manaauth.Client) (*manaauth.MFAChallenge, error) {
	if method != lockout.Password && method != lockout.Passkey {
		return nil, fmt.Errorf("mfa: challenge: a first step by %q cannot ask for a second factor", method)
	}
	tok, h, err := secret.New(c.rand)
	if err != nil {
		return nil, fmt.Errorf("mfa: challenge: %w", err)
	}
	now := c.now().UTC()
	// A batch is one implicit transaction: the setting that row-level
	// security reads holds for the statements after it, and ends with it.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('`+vault.UserSetting+`', $1, true)`, userID.String())
	// The user's challenges that ended long ago go; a spent or expired one
	// is refused the same way whether its row is still there or not.
	b.Queue(`DELETE FROM auth.mfa_challenges WHERE user_id = $1 AND expires_at < $2`, userID, now.Add(-maxChallengeTTL))
	b.Queue(`INSERT INTO auth.mfa_challenges (id, token_hash, user_id, method, created_at, expires_at)
		SELECT $1, $2, $3, $4, $5, $6
		WHERE EXISTS (SELECT 1 FROM auth.mfa_factors WHERE user_id = $3 AND status = 'active')`,
		uuid.New(), h, userID, string(method), now, now.Add(c.ttl))
	br := c.pool.SendBatch(ctx, b)
	var (
		inserted int64
		execErr  error
	)
	for i := range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			execErr = err
			break
		}
		if i == b.Len()-1 {
			inserted = tag.RowsAffected()
		}
	}
	// After a failed statement Close reports that same failure; the
	// statement's own error, when there is one, is the more precise.
	if err := cmp.Or(execErr, br.Close()); err != nil {
		return nil, fmt.Errorf("mfa: challenge: %w", err)
	}
	if inserted == 0 {
		return nil, nil
	}
	return &manaauth.MFAChallenge{Token: tok, Methods: append([]string(nil), Methods...)}, nil
}
