package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/metrics"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/web"
)

// Config configures a Service. Zero values take the documented defaults.
type Config struct {
	Pool *pgxpool.Pool // runtime role; required
	// Events records API_KEY_CREATED and API_KEY_REVOKED in the
	// transaction that creates or revokes the key; required.
	Events *lockout.Events
	// MaxKeys is how many live (neither revoked nor expired) keys a user
	// may hold; default 50.
	MaxKeys int
	// CacheTTL is how long Validate trusts what it looked up, found or
	// not; default 5 s, negative: no cache. A revoke on this instance
	// takes effect at once; other instances see it within CacheTTL.
	CacheTTL time.Duration
	// CacheSize bounds the cache: at most CacheSize keys that exist and
	// CacheSize hashes that match none; default 10,000 each.
	CacheSize int
	// LastUsedInterval is how often the last use of keys is written: the
	// validations of a key are coalesced in memory and one UPDATE per
	// interval writes them; default 1 minute. A crash loses at most the
	// uses of the last interval.
	LastUsedInterval time.Duration
	// MaxPending bounds the keys whose last use waits in memory for the
	// next write; default 100,000. Uses of further keys are not recorded
	// (counted in mana_auth_api_key_last_used_dropped_total).
	MaxPending int
	Now        func() time.Time // default time.Now
	Rand       io.Reader        // default crypto/rand.Reader
	Logger     *slog.Logger     // default slog.Default()
	// Registerer receives the package's counters; nil leaves them
	// unregistered (still counted).
	Registerer prometheus.Registerer
}

// Service issues, lists, revokes and validates API keys.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	db     *bun.DB
	events *lockout.Events
	now    func() time.Time
	rand   io.Reader
	logger *slog.Logger
	cache  *cache
	used   *lastUsed

	flushWrites, flushFailures, dropped prometheus.Counter

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and starts the loop that writes the last use of keys
// (Close stops it).
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("apikey: Config.Pool is required")
	case cfg.Events == nil:
		return nil, errors.New("apikey: Config.Events is required")
	case cfg.MaxKeys < 0, cfg.CacheSize < 0, cfg.LastUsedInterval < 0, cfg.MaxPending < 0:
		return nil, errors.New("apikey: MaxKeys, CacheSize, LastUsedInterval and MaxPending must not be negative")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxKeys, 50)
	def(&cfg.CacheSize, 10_000)
	def(&cfg.MaxPending, 100_000)
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.LastUsedInterval == 0 {
		cfg.LastUsedInterval = time.Minute
	}
	s := &Service{cfg: cfg, pool: cfg.Pool, events: cfg.Events, now: cfg.Now, rand: cfg.Rand, logger: cfg.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	var err error
	if s.cache, err = newCache(cfg.CacheTTL, cfg.CacheSize); err != nil {
		return nil, fmt.Errorf("apikey: cache: %w", err)
	}
	counter := func(name, help string) prometheus.Counter {
		if err != nil {
			return nil
		}
		var c prometheus.Counter
		c, err = metrics.Counter(cfg.Registerer, prometheus.CounterOpts{Name: name, Help: help})
		return c
	}
	s.flushWrites = counter("mana_auth_api_key_last_used_writes_total",
		"Rows of auth.api_keys whose last_used_at was written (at most one per key per interval and instance).")
	s.flushFailures = counter("mana_auth_api_key_last_used_flush_failures_total",
		"Writes of the keys' last use that failed (logged at warn with the cause; retried at the next interval).")
	s.dropped = counter("mana_auth_api_key_last_used_dropped_total",
		"Uses of a key not recorded because too many keys were waiting for the next write.")
	if err != nil {
		return nil, fmt.Errorf("apikey: %w", err)
	}
	s.used = newLastUsed(cfg.MaxPending, s.dropped)
	s.db = bun.NewDB(stdlib.OpenDBFromPool(cfg.Pool), pgdialect.New())
	go s.flushLoop()
	return s, nil
}

// Close stops the loop that writes the last use of keys and writes what
// is still pending (within 10 seconds). Call it after the HTTP server has
// stopped: uses recorded later are not written. Later calls return the
// first call's result.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = s.Flush(ctx)
		if err := s.db.Close(); err != nil {
			s.closeErr = errors.Join(s.closeErr, fmt.Errorf("apikey: close: %w", err))
		}
	})
	return s.closeErr
}

func (s *Service) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.LastUsedInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LastUsedInterval)
			if err := s.Flush(ctx); err != nil {
				s.logger.Warn("apikey: last use of keys not written; retried at the next interval", "err", err)
			}
			cancel()
		}
	}
}

// Flush writes the last use of every key validated since the previous
// write, in one UPDATE; the loop started by New calls it every
// LastUsedInterval, Close once more. A value older than the stored one
// (another instance wrote a later use) changes nothing. When the write
// fails the uses stay pending for the next one, and the failure is
// counted.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) Flush(ctx context.Context) error {
	ids, times := s.used.take()
	if len(ids) == 0 {
		return nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE auth.api_keys k SET last_used_at = v.t
		FROM unnest($1::uuid[], $2::timestamptz[]) AS v (id, t)
		WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.t)`, ids, times)
	if err != nil {
		s.flushFailures.Inc()
		s.used.restore(ids, times)
		return fmt.Errorf("apikey: write last use: %w", err)
	}
	s.flushWrites.Add(float64(tag.RowsAffected()))
	return nil
}

// Client describes the caller of an action, for its security event. Zero
// values are stored as NULL.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

// APIKey is a key as its owner sees it: never the key or its hash.
type APIKey struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

// Created is the answer of Create: the key, shown this once, and its
// description.
type Created struct {
	Key    string `json:"key"`
	APIKey APIKey `json:"apiKey"`
}

// CreateInput is what Create needs.
type CreateInput struct {
	Name      string
	Scopes    []string   // nil: none
	ExpiresAt *time.Time // nil: never expires
}

// Create issues a key for userID, at most MaxKeys live keys per user (the
// count and the insert serialise on the user's row, so parallel creates
// cannot pass the cap). Name: trimmed, 1 to 100 characters, no control
// characters. Scopes: each matching ScopePattern, repeats dropped, at most
// 32. ExpiresAt: in the future. API_KEY_CREATED commits with the key.
//
// Errors: VALIDATION_FAILED (details.fields names name, scopes,
// expiresAt), NOT_FOUND (the account is gone), CONFLICT (details.reason
// "key_limit"), SERVICE_UNAVAILABLE.
func (s *Service) Create(ctx context.Context, userID uuid.UUID, in CreateInput, c Client) (Created, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	bad := map[string]string{}
	name, msg := keyName(in.Name)
	if msg != "" {
		bad["name"] = msg
	}
	scopes, msg := NormalizeScopes(in.Scopes)
	if msg != "" {
		bad["scopes"] = msg
	}
	var expires *time.Time
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			bad["expiresAt"] = "must be in the future"
		}
		expires = &t
	}
	if len(bad) > 0 {
		return Created{}, web.Invalid(bad)
	}
	key, hash, err := newKey(s.rand)
	if err != nil {
		return Created{}, err
	}
	row := &keyRow{ID: uuid.New(), UserID: userID, Name: name, Prefix: key[:PrefixLen], KeyHash: hash[:],
		Scopes: scopes, CreatedAt: now, ExpiresAt: expires}
	err = s.inTx(ctx, "create", func(tx bun.Tx) error {
		// The user's row lock serialises the creates of one user.
		var one int
		err := tx.NewSelect().TableExpr("auth.users").ColumnExpr("1").Where("id = ?", userID).For("NO KEY UPDATE").Scan(ctx, &one)
		if errors.Is(err, sql.ErrNoRows) {
			return autherr.New(autherr.NotFound, "user not found")
		}
		if err != nil {
			return err
		}
		live, err := tx.NewSelect().Model((*keyRow)(nil)).
			Where("user_id = ?", userID).Where("revoked_at IS NULL").
			Where("(expires_at IS NULL OR expires_at > ?)", now).Count(ctx)
		if err != nil {
			return err
		}
		if live >= int64(s.cfg.MaxKeys) {
			return &autherr.Error{Code: autherr.Conflict,
				Message: fmt.Sprintf("at most %d live API keys per account; revoke one first", s.cfg.MaxKeys),
				Details: map[string]any{"reason": "key_limit", "limit": s.cfg.MaxKeys}}
		}
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		return s.event(ctx, tx, lockout.Event{Type: lockout.APIKeyCreated, UserID: userID, IP: c.IP, UserAgent: c.UserAgent,
			Metadata: map[string]any{"keyId": row.ID.String(), "prefix": row.Prefix}})
	})
	if err != nil {
		return Created{}, err
	}
	return Created{Key: key, APIKey: row.view(nil)}, nil
}

// List returns the user's keys that are not revoked (expired ones
// included), newest first. LastUsedAt includes the uses this instance
// has not written yet.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) List(ctx context.Context, userID uuid.UUID) ([]APIKey, error) {
	var rows []keyRow
	err := s.db.NewSelect().Model(&rows).ExcludeColumn("key_hash").
		Where("user_id = ?", userID).Where("revoked_at IS NULL").
		OrderExpr("created_at DESC, id DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", dbErr(err))
	}
	out := make([]APIKey, len(rows))
	for i := range rows {
		out[i] = rows[i].view(s.used.pendingAt(rows[i].ID))
	}
	return out, nil
}

// Revoke revokes the user's key id: its row stays, marked, so that
// validation answers "revoked"; API_KEY_REVOKED commits with it. This
// instance stops accepting the key at once, others within CacheTTL.
// Revoking a revoked key changes nothing and succeeds.
//
// Errors: NOT_FOUND (no such key of this user), SERVICE_UNAVAILABLE.
func (s *Service) Revoke(ctx context.Context, userID, id uuid.UUID, c Client) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	var hash []byte
	err := s.inTx(ctx, "revoke", func(tx bun.Tx) error {
		var row keyRow
		err := tx.NewUpdate().Model(&row).Set("revoked_at = ?", now).
			Where("id = ?", id).Where("user_id = ?", userID).Where("revoked_at IS NULL").
			Returning("key_hash, prefix").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			exists, err := tx.NewSelect().Model((*keyRow)(nil)).Where("id = ?", id).Where("user_id = ?", userID).Exists(ctx)
			if err != nil {
				return err
			}
			if !exists {
				return autherr.New(autherr.NotFound, "API key not found")
			}
			return nil // revoked already
		}
		if err != nil {
			return err
		}
		hash = row.KeyHash
		return s.event(ctx, tx, lockout.Event{Type: lockout.APIKeyRevoked, UserID: userID, IP: c.IP, UserAgent: c.UserAgent,
			Metadata: map[string]any{"keyId": id.String(), "prefix": row.Prefix}})
	})
	if err != nil {
		return err
	}
	if len(hash) == sha256.Size {
		s.cache.invalidate([32]byte(hash))
	}
	return nil
}

// Reason says why a key is not valid.
type Reason string

// The reasons of api.md.
const (
	ReasonUnknown Reason = "unknown"
	ReasonRevoked Reason = "revoked"
	ReasonExpired Reason = "expired"
	ReasonScope   Reason = "scope"
)

// Validation is the answer of Validate. UserID and Scopes are set only
// when Valid.
type Validation struct {
	Valid  bool
	UserID uuid.UUID
	Scopes []string
	Reason Reason // "" when Valid
}

// Validate checks key and, when scope is not empty, that the key carries
// it: one lookup by the key's SHA-256 through the unique index, or none
// when the answer is cached (CacheTTL, found or not), and no write — the
// use is recorded in memory and written by the next Flush. A string that
// is not shaped like a key is unknown without a lookup.
//
// Errors: VALIDATION_FAILED (a scope that does not match ScopePattern),
// SERVICE_UNAVAILABLE.
func (s *Service) Validate(ctx context.Context, key, scope string) (Validation, error) {
	if scope != "" && !ValidScope(scope) {
		return Validation{}, web.Invalid(map[string]string{"scope": "must match " + ScopePattern})
	}
	if !WellFormed(key) {
		return Validation{Reason: ReasonUnknown}, nil
	}
	h := sha256.Sum256([]byte(key))
	now := s.now()
	e, ok := s.cache.get(h, now)
	if !ok {
		epoch := s.cache.begin()
		var err error
		if e, err = s.lookup(ctx, h); err != nil {
			return Validation{}, err
		}
		s.cache.put(h, e, now, epoch)
	}
	switch {
	case !e.found:
		return Validation{Reason: ReasonUnknown}, nil
	case e.revoked:
		return Validation{Reason: ReasonRevoked}, nil
	case e.expiresAt != nil && !now.Before(*e.expiresAt):
		return Validation{Reason: ReasonExpired}, nil
	case scope != "" && !slices.Contains(e.scopes, scope):
		return Validation{Reason: ReasonScope}, nil
	}
	s.used.touch(e.id, now)
	return Validation{Valid: true, UserID: e.userID, Scopes: slices.Clone(e.scopes)}, nil
}

// lookup reads the key with hash h: one indexed statement.
func (s *Service) lookup(ctx context.Context, h [32]byte) (entry, error) {
	e := entry{found: true}
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, scopes, expires_at, revoked_at IS NOT NULL
		FROM auth.api_keys WHERE key_hash = $1`, h[:]).Scan(&e.id, &e.userID, &e.scopes, &e.expiresAt, &e.revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, fmt.Errorf("apikey: validate: %w", err)
	}
	return e, nil
}

// event writes ev inside tx.
func (s *Service) event(ctx context.Context, tx bun.Tx, ev lockout.Event) error {
	q, args, err := s.events.Statement(ev)
	if err != nil {
		return err
	}
	// The underlying *sql.Tx takes the placeholders as they are (bun's
	// own ExecContext would format the arguments into the text).
	_, err = tx.Tx.ExecContext(ctx, q, args...)
	return err
}

// inTx runs fn in one transaction: begin, fn, commit; rolled back on any
// error, and a failed rollback is logged, never dropped.
func (s *Service) inTx(ctx context.Context, what string, fn func(bun.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apikey: %s: %w", what, dbErr(err))
	}
	defer func() {
		if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			s.logger.Warn("apikey: rollback failed", "op", what, "err", err)
		}
	}()
	if err := fn(tx); err != nil {
		return fmt.Errorf("apikey: %s: %w", what, dbErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apikey: %s: commit: %w", what, dbErr(err))
	}
	return nil
}
