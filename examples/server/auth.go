package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/grant"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/password"
	"github.com/mana-how/mana-auth/spaces"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/vault"
)

// audience is the aud claim of the server's access tokens.
const audience = "mana"

// authStack is everything the auth routes need, built from Config.
type authStack struct {
	tokens   *token.Tokens
	svc      *manaauth.Service
	handler  *manaauth.Handler
	limiter  lockout.Limiter
	vault    *vault.Handler
	vaultSvc *vault.Service
	keyIDs   []string // the KEK ids of the ring, for messages
	grant    *grant.Handler
	spaceSvc *spaces.Service
	spaces   *spaces.Handler
	boot     *bootstrap.Handler
	// admission bounds the requests of the password routes in flight to
	// what the hasher can run and queue.
	admission *admission
	closers   []func() error
}

func (a *authStack) Close() error {
	if a.svc != nil {
		a.svc.Close()
	}
	if a.spaceSvc != nil {
		a.spaceSvc.Close()
	}
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func newAuthStack(ctx context.Context, cfg Config, pool *pgxpool.Pool, reg prometheus.Registerer, logger *slog.Logger) (_ *authStack, err error) {
	a := &authStack{}
	defer func() {
		if err != nil {
			if cerr := a.Close(); cerr != nil {
				logger.Warn("close auth stack after a failed start", "err", cerr)
			}
		}
	}()
	key, err := signingKey(cfg, logger)
	if err != nil {
		return nil, err
	}
	a.tokens, err = token.New(token.Config{Issuer: cfg.BaseURL.String(), Audience: audience, Signing: key})
	if err != nil {
		return nil, fmt.Errorf("MANA_AUTH_SIGNING_KEY: %w", err)
	}
	hasher, err := password.NewHasher(cfg.hasher)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := reg.Register(hasherCollector{hasher}); err != nil {
			return nil, fmt.Errorf("password hasher metrics: %w", err)
		}
	}
	// Each refusal is counted (mana_auth_http_shed_total) and logged as a
	// request line; an error line each would flood the log with the flood.
	if a.admission, err = newAdmission(hasher, cfg.admission, reg, autherr.Writer{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return nil, fmt.Errorf("admission metrics: %w", err)
	}
	events, err := lockout.NewEvents(lockout.EventsConfig{Pool: pool, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	gate, err := lockout.New(lockout.Config{Pool: pool, Events: events, Logger: logger})
	if err != nil {
		return nil, err
	}
	var mailer mail.Mailer = mail.LogMailer{Logger: logger}
	if cfg.SMTPURL != nil {
		if mailer, err = mail.NewSMTP(mail.SMTPConfig{URL: cfg.SMTPURL, From: cfg.MailFrom}); err != nil {
			return nil, fmt.Errorf("SMTP_URL: %w", err)
		}
	} else {
		logger.Warn("SMTP_URL is not set: mails are logged, links included, instead of being sent")
	}
	if a.limiter, err = ipLimiter(ctx, cfg, a); err != nil {
		return nil, err
	}
	boot, err := bootstrap.New(bootstrap.Config{Pool: pool, Logger: logger})
	if err != nil {
		return nil, err
	}
	links := mail.Links{BaseURL: cfg.BaseURL}
	// Every space gets its kontextDoc in the transaction that creates it; a
	// failure never fails the creation (spaces logs and counts it) and
	// POST /api/v1/me/bootstrap-singletons reconciles.
	if a.spaceSvc, err = spaces.New(spaces.Config{Pool: pool, Mailer: mailer, Links: links, Logger: logger, Registerer: reg,
		Hooks: spaces.Hooks{SpaceCreated: func(ctx context.Context, tx pgx.Tx, spaceID, ownerID uuid.UUID) error {
			_, err := boot.BootstrapSpaceSingletonsTx(ctx, tx, spaceID, ownerID)
			return err
		}},
	}); err != nil {
		return nil, err
	}
	a.svc, err = manaauth.New(manaauth.Config{
		// A new user gets its Personal space in the registration
		// transaction and its context singleton after signup (a failure of
		// the latter never fails the signup: manaauth logs and counts it);
		// the only owner of a shared space cannot delete the account.
		Hooks: manaauth.Hooks{
			UserCreatedTx: func(ctx context.Context, tx pgx.Tx, u manaauth.User) error {
				_, err := a.spaceSvc.CreatePersonalTx(ctx, tx, u.ID)
				return err
			},
			UserCreated: func(ctx context.Context, u manaauth.User) error {
				_, err := boot.BootstrapUserSingletons(ctx, u.ID)
				return err
			},
			UserDeletingTx: a.spaceSvc.CheckUserDeletable,
		},
		Pool: pool, Hasher: hasher, Tokens: a.tokens, Gate: gate, Events: events, Mailer: mailer,
		Links: links, Logger: logger, Registerer: reg,
		RequireEmailVerification: cfg.RequireEmailVerify, MaxDailySignups: cfg.MaxDailySignups,
		RefreshGrace: cfg.RefreshGrace, Now: cfg.now,
	})
	if err != nil {
		return nil, err
	}
	a.handler = manaauth.NewHandler(a.svc, manaauth.HandlerOptions{Logger: logger, TrustedProxies: cfg.TrustedProxies,
		IPLimiter: a.limiter, TrustedOrigins: append([]string{manaauth.Origin(cfg.BaseURL)}, cfg.CORSOrigins...)})
	if a.spaces, err = spaces.NewHandler(a.spaceSvc, spaces.HandlerOptions{Tokens: a.tokens, Logger: logger}); err != nil {
		return nil, err
	}
	if a.boot, err = bootstrap.NewHandler(boot, bootstrap.HandlerOptions{Logger: logger, UserFromRequest: token.UserFromRequest,
		Spaces: spaceLister{a.spaceSvc}}); err != nil {
		return nil, err
	}

	if cfg.KeyWarning != "" {
		logger.Warn(cfg.KeyWarning)
	}
	vsvc, err := vault.New(vault.Config{Pool: pool, Keys: cfg.Keys, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	a.vaultSvc, a.keyIDs = vsvc, cfg.Keys.IDs()
	if a.vault, err = vault.NewHandler(vsvc, vault.HandlerOptions{Logger: logger, TrustedProxies: cfg.TrustedProxies,
		UserFromRequest: token.UserFromRequest}); err != nil {
		return nil, err
	}

	iss, err := grant.NewIssuer(grant.IssuerConfig{
		PublicKeyPEM: []byte(cfg.AIPublicKeyPEM), // "": every request answers 503 GRANT_NOT_CONFIGURED
		Keys:         vaultKeys{vsvc},
		Signer:       a.tokens,
		Events: grant.EventLoggerFunc(func(ctx context.Context, e grant.Event) {
			events.Log(ctx, lockout.Event{Type: lockout.GrantIssued, UserID: e.UserID, IP: e.IP,
				UserAgent: e.UserAgent, Metadata: e.Metadata()})
		}),
		Logger: logger, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("MANA_AI_PUBLIC_KEY_PEM: %w", err)
	}
	if !iss.Configured() {
		logger.Warn("MANA_AI_PUBLIC_KEY_PEM is not set: mission grants answer 503 GRANT_NOT_CONFIGURED")
	}
	if a.grant, err = grant.NewHandler(iss, grant.HandlerOptions{Logger: logger,
		TrustedProxies: cfg.TrustedProxies, UserFromRequest: token.UserFromRequest}); err != nil {
		return nil, err
	}
	return a, nil
}

// spaceLister adapts spaces to bootstrap.SpaceLister.
type spaceLister struct{ svc *spaces.Service }

func (l spaceLister) SpacesOf(ctx context.Context, userID uuid.UUID) ([]bootstrap.Space, error) {
	owners, err := l.svc.SpaceOwners(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]bootstrap.Space, len(owners))
	for i, o := range owners {
		out[i] = bootstrap.Space{ID: o.SpaceID, OwnerUserID: o.OwnerID}
	}
	return out, nil
}

// vaultKeys adapts the vault to grant.KeySource: a zero-knowledge vault
// has no key the server could derive from.
type vaultKeys struct{ svc *vault.Service }

func (v vaultKeys) MasterKey(ctx context.Context, userID uuid.UUID) ([]byte, error) {
	// Status reads without an audit row: a refused grant (no vault, zero
	// knowledge) must not be audited as a key read.
	st, err := v.svc.Status(ctx, userID)
	if err != nil {
		return nil, err
	}
	switch {
	case !st.VaultExists:
		return nil, autherr.New(autherr.VaultNotFound, "no encryption vault; initialise it first")
	case st.ZeroKnowledge:
		return nil, autherr.New(autherr.ZKActive, "zero-knowledge mode is active")
	}
	k, err := v.svc.Key(ctx, userID, vault.Client{})
	if err != nil {
		return nil, err
	}
	if k.RequiresRecoveryCode {
		return nil, autherr.New(autherr.ZKActive, "zero-knowledge mode is active")
	}
	return k.MasterKey, nil
}

// ipLimiter builds the MANA_AUTH_IP_RATE limiter: in Redis when REDIS_URL
// is set (shared by every instance), in memory otherwise; nil when the
// rate is 0.
func ipLimiter(ctx context.Context, cfg Config, a *authStack) (lockout.Limiter, error) {
	if cfg.IPRate.Limit == 0 {
		return nil, nil
	}
	rate := lockout.Rate{Limit: cfg.IPRate.Limit, Period: cfg.IPRate.Period}
	if cfg.RedisURL == nil {
		return lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: rate})
	}
	opts, err := redis.ParseURL(cfg.RedisURL.String())
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	a.closers = append(a.closers, client.Close)
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return lockout.NewRedisLimiter(lockout.RedisConfig{Client: client, Rate: rate})
}

// signingKey is MANA_AUTH_SIGNING_KEY, or in development a key generated
// once and kept in the state directory.
func signingKey(cfg Config, logger *slog.Logger) (token.SigningKey, error) {
	if cfg.SigningKeyPEM != "" {
		k, err := token.ParseSigningKeyPEM([]byte(cfg.SigningKeyPEM))
		if err != nil {
			return token.SigningKey{}, fmt.Errorf("MANA_AUTH_SIGNING_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(cfg.StateDir, "signing-key.pem")
	b, err := os.ReadFile(path) // #nosec G304 -- a file of the operator's state directory (MANA_AUTH_STATE_DIR), named by the server
	if err == nil {
		k, err := token.ParseSigningKeyPEM(b)
		if err != nil {
			return token.SigningKey{}, fmt.Errorf("development signing key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return token.SigningKey{}, fmt.Errorf("development signing key: %w", err)
	}
	k, err := token.GenerateSigningKey(rand.Reader)
	if err != nil {
		return token.SigningKey{}, err
	}
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		return token.SigningKey{}, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return token.SigningKey{}, fmt.Errorf("state directory: %w", err)
	}
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		return token.SigningKey{}, fmt.Errorf("development signing key: %w", err)
	}
	logger.Warn("development: generated an access-token signing key", "path", path)
	return k, nil
}
