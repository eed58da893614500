package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mana-how/mana-auth/apikey"
	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/bootstrap"
	"github.com/mana-how/mana-auth/gdpr"
	"github.com/mana-how/mana-auth/grant"
	"github.com/mana-how/mana-auth/grant/grantpg"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/mfa"
	"github.com/mana-how/mana-auth/passkey"
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
	live     *token.LiveSessions // the live-session check of the routes that guard secrets
	svc      *manaauth.Service
	handler  *manaauth.Handler
	limiter  lockout.Limiter
	vault    *vault.Handler
	vaultSvc *vault.Service
	keyIDs   []string         // the KEK ids of the ring, for messages
	kek      vault.KeyWrapper // the KEK ring (vaults and TOTP secrets)
	pool     *pgxpool.Pool
	grant    *grant.Handler
	spaceSvc *spaces.Service
	spaces   *spaces.Handler
	boot     *bootstrap.Handler
	mfaSvc   *mfa.Service
	mfa      *mfa.Handler
	keysSvc  *apikey.Service
	keys     *apikey.Handler
	dataSvc  *gdpr.Service
	data     *gdpr.Handler
	passkeys *passkey.Handler
	pkSvc    *passkey.Service // nil when passkeys are off (see newPasskeys)
	redis    *redis.Client    // nil without REDIS_URL
	// admission bounds the requests of the password routes in flight to
	// what the hasher can run and queue.
	admission *admission
	closers   []func() error
}

// exportRate limits the GDPR exports of one user: an export reads
// everything stored about the user.
var exportRate = lockout.Rate{Limit: 5, Period: time.Hour}

func (a *authStack) Close() error {
	if a.svc != nil {
		a.svc.Close()
	}
	if a.spaceSvc != nil {
		a.spaceSvc.Close()
	}
	if a.mfaSvc != nil {
		a.mfaSvc.Close()
	}
	var errs []error
	if a.keysSvc != nil {
		errs = append(errs, a.keysSvc.Close()) // writes the keys' last uses still in memory
	}
	if a.pkSvc != nil {
		errs = append(errs, a.pkSvc.Close())
	}
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
	hc := cfg.hasher
	if hc.Params == (password.Params{}) {
		hc.Params = cfg.Argon2id // MANA_AUTH_ARGON2ID; zero: the defaults
	}
	hasher, err := password.NewHasher(hc)
	if err != nil {
		return nil, fmt.Errorf("MANA_AUTH_ARGON2ID: %w", err)
	}
	if !cfg.Argon2id.MeetsOWASP() {
		logger.Warn("MANA_AUTH_ARGON2ID is below OWASP's minimum argon2id cost (m=19456,t=2 or an equivalent): fit for tests, not for production",
			"argon2id", cfg.Argon2id.String())
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
	if cfg.IPRate.Limit != 0 {
		if a.limiter, err = a.newLimiter(ctx, cfg,
			lockout.Rate{Limit: cfg.IPRate.Limit, Period: cfg.IPRate.Period}, "mana-auth:rl:"); err != nil {
			return nil, err
		}
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
	// The second step of sign-in: the challenges need only the database,
	// so they are built before the account service that asks for them,
	// and the mfa service that completes them after it (see below).
	challenges, err := mfa.NewChallenges(mfa.ChallengesConfig{Pool: pool})
	if err != nil {
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
			// Deleting an account (DELETE /auth/account and DELETE
			// /me/data alike) erases what the cascade cannot reach, after
			// the only owner of a shared space was refused.
			UserDeletingTx: func(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
				if err := a.spaceSvc.CheckUserDeletable(ctx, tx, userID); err != nil {
					return err
				}
				return a.dataSvc.Erase(ctx, tx, userID)
			},
		},
		Pool: pool, Hasher: hasher, Tokens: a.tokens, Gate: gate, Events: events, Mailer: mailer,
		Links: links, Logger: logger, Registerer: reg, SecondFactor: challenges,
		RequireEmailVerification: cfg.RequireEmailVerify, MaxDailySignups: cfg.MaxDailySignups,
		RefreshGrace: cfg.RefreshGrace, Now: cfg.now,
	})
	if err != nil {
		return nil, err
	}
	if a.live, err = token.NewLiveSessions(token.LiveSessionsConfig{Checker: a.svc}); err != nil {
		return nil, err
	}
	a.handler = manaauth.NewHandler(a.svc, manaauth.HandlerOptions{Logger: logger, TrustedProxies: cfg.TrustedProxies,
		IPLimiter: a.limiter, TrustedOrigins: append([]string{manaauth.Origin(cfg.BaseURL)}, cfg.CORSOrigins...),
		Live: a.live})
	if a.mfaSvc, err = mfa.New(mfa.Config{Pool: pool, Accounts: a.svc, Keys: cfg.Keys, Mailer: mailer,
		Logger: logger, Registerer: reg}); err != nil {
		return nil, err
	}
	if a.mfa, err = mfa.NewHandler(a.mfaSvc, mfa.HandlerOptions{Tokens: a.tokens, Live: a.live, Logger: logger,
		TrustedProxies: cfg.TrustedProxies, IPLimiter: a.limiter}); err != nil {
		return nil, err
	}
	if a.spaces, err = spaces.NewHandler(a.spaceSvc, spaces.HandlerOptions{Tokens: a.tokens, Logger: logger}); err != nil {
		return nil, err
	}
	if a.boot, err = bootstrap.NewHandler(boot, bootstrap.HandlerOptions{Logger: logger, UserFromRequest: token.UserFromRequest,
		Spaces: spaceLister{a.spaceSvc}}); err != nil {
		return nil, err
	}

	if err := a.newPasskeys(ctx, cfg, pool, mailer, reg, logger); err != nil {
		return nil, err
	}

	if cfg.KeyWarning != "" {
		logger.Warn(cfg.KeyWarning)
	}
	vsvc, err := vault.New(vault.Config{Pool: pool, Keys: cfg.Keys, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	a.vaultSvc, a.keyIDs, a.kek, a.pool = vsvc, cfg.Keys.IDs(), cfg.Keys, pool
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

	if a.keysSvc, err = apikey.New(apikey.Config{Pool: pool, Events: events, Logger: logger, Registerer: reg}); err != nil {
		return nil, err
	}
	if cfg.ServiceKey == "" {
		logger.Warn("MANA_AUTH_SERVICE_KEY is not set: POST /api/v1/api-keys/validate answers 503")
	}
	if a.keys, err = apikey.NewHandler(a.keysSvc, apikey.HandlerOptions{Tokens: a.tokens, ServiceKey: cfg.ServiceKey,
		TrustedProxies: cfg.TrustedProxies, Logger: logger}); err != nil {
		return nil, err
	}
	if err := a.mountData(ctx, cfg, pool, events, gate, boot, vsvc, logger); err != nil {
		return nil, err
	}
	return a, nil
}

// mountData builds the GDPR export and erasure over every package that
// holds rows about a user. A package that adds such a table implements
// gdpr.Exporter and is listed here; the completeness test finds the table
// until then.
func (a *authStack) mountData(ctx context.Context, cfg Config, pool *pgxpool.Pool, events *lockout.Events, gate *lockout.Service,
	boot *bootstrap.Bootstrapper, vsvc *vault.Service, logger *slog.Logger) error {
	audit, err := grantpg.New(grantpg.Config{Pool: pool})
	if err != nil {
		return err
	}
	if a.dataSvc, err = gdpr.New(gdpr.Config{
		Pool: pool, Users: a.svc, Addresses: gate, Logger: logger,
		Exporters: []gdpr.Exporter{a.svc, gate, a.spaceSvc, a.keysSvc, vsvc, audit, boot, a.mfaSvc, passkey.Data{}},
		Exported: func(ctx context.Context, userID uuid.UUID, c gdpr.Client) error {
			return events.Append(ctx, lockout.Event{Type: lockout.DataExported, UserID: userID, IP: c.IP, UserAgent: c.UserAgent})
		},
	}); err != nil {
		return err
	}
	limiter, err := a.newLimiter(ctx, cfg, exportRate, "mana-auth:rl:export:")
	if err != nil {
		return err
	}
	a.data, err = gdpr.NewHandler(a.dataSvc, gdpr.HandlerOptions{
		UserFromRequest: token.UserFromRequest, Limiter: limiter, TrustedProxies: cfg.TrustedProxies, Logger: logger,
		Delete: func(ctx context.Context, userID uuid.UUID, password string, c gdpr.Client) error {
			return a.svc.DeleteAccount(ctx, userID, password, manaauth.Client{IP: c.IP, UserAgent: c.UserAgent})
		},
	})
	return err
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

// newLimiter builds a limiter of rate: in Redis when REDIS_URL is set
// (shared by every instance, one client for all limiters, each limit
// under its own key prefix), in memory otherwise. Both can Peek (the
// passkey cooldown).
func (a *authStack) newLimiter(ctx context.Context, cfg Config, rate lockout.Rate, prefix string) (lockout.Peeker, error) {
	if cfg.RedisURL == nil {
		return lockout.NewMemoryLimiter(lockout.MemoryConfig{Rate: rate})
	}
	if a.redis == nil {
		opts, err := redis.ParseURL(cfg.RedisURL.String())
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		client := redis.NewClient(opts)
		a.closers = append(a.closers, client.Close)
		if err := client.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		a.redis = client
	}
	return lockout.NewRedisLimiter(lockout.RedisConfig{Client: a.redis, Rate: rate, Prefix: prefix})
}

// unlimited is a lockout.Limiter that allows everything: the passkey
// options routes with MANA_AUTH_PASSKEY_OPTIONS_RATE=0 (load tests).
type unlimited struct{}

func (unlimited) Allow(context.Context, string) (bool, time.Duration, error) { return true, 0, nil }

// newPasskeys builds the passkey service and its handler. Passkeys are on
// whenever MANA_AUTH_BASE_URL is a context browsers offer WebAuthn in —
// https, or http on localhost — with the RP ID of WEBAUTHN_RP_ID (default
// the base URL's host, checked by LoadConfig) and the origins of
// passkeyOrigins.
// Otherwise the routes are mounted all the same, GET /capability answers
// {available: false} and the others 404, and the start logs why. The
// stand-in credential lists of sign-in options are keyed from the signing
// key, so every instance agrees; the limits share REDIS_URL when set.
func (a *authStack) newPasskeys(ctx context.Context, cfg Config, pool *pgxpool.Pool, mailer mail.Mailer, reg prometheus.Registerer, logger *slog.Logger) error {
	if passkey.SecureOrigin(cfg.BaseURL) {
		decoyKey, err := a.tokens.DeriveKey("mana-auth passkey decoys v1", 32)
		if err != nil {
			return err
		}
		var limits passkey.Limits
		if r := cfg.PasskeyOptionsRate; r.Limit == 0 {
			limits.Options = unlimited{}
			logger.Warn("passkey options routes not rate limited (MANA_AUTH_PASSKEY_OPTIONS_RATE=0)")
		} else if limits.Options, err = a.newLimiter(ctx, cfg, lockout.Rate{Limit: r.Limit, Period: r.Period}, "mana-auth:rl:passkey-options:"); err != nil {
			return err
		}
		if limits.Failures, err = a.newLimiter(ctx, cfg, passkey.FailureRate, "mana-auth:rl:passkey-failures:"); err != nil {
			return err
		}
		if limits.Cooldown, err = a.newLimiter(ctx, cfg, passkey.CooldownRate, "mana-auth:rl:passkey-cooldown:"); err != nil {
			return err
		}
		a.pkSvc, err = passkey.New(passkey.Config{Accounts: a.svc, Pool: pool, RPID: cfg.RPID,
			Origins: passkeyOrigins(cfg), Mailer: mailer, DecoyKey: decoyKey, Limits: limits,
			Logger: logger, Registerer: reg})
		if err != nil {
			return fmt.Errorf("WEBAUTHN_RP_ID: %w", err)
		}
	} else {
		logger.Warn("passkeys are off: browsers offer WebAuthn only on https (or http on localhost)", "base_url", cfg.BaseURL.String())
	}
	var err error
	a.passkeys, err = passkey.NewHandler(a.pkSvc, passkey.HandlerOptions{Tokens: a.tokens, Live: a.live,
		TrustedProxies: cfg.TrustedProxies, Logger: logger})
	return err
}

// passkeyOrigins are the origins WebAuthn ceremonies may come from: the
// base URL's, and every MANA_AUTH_CORS_ORIGINS origin that browsers run
// WebAuthn on for the RP ID (https, or http on localhost, on the RP ID or
// a subdomain of it) — an app on app.example.com with WEBAUTHN_RP_ID
// example.com. Other CORS origins may call the API but not run ceremonies.
func passkeyOrigins(cfg Config) []string {
	out := []string{manaauth.Origin(cfg.BaseURL)}
	for _, o := range cfg.CORSOrigins {
		u, err := url.Parse(o)
		if err != nil || !passkey.SecureOrigin(u) {
			continue
		}
		if h := strings.ToLower(u.Hostname()); h == cfg.RPID || strings.HasSuffix(h, "."+cfg.RPID) {
			out = append(out, manaauth.Origin(u))
		}
	}
	return out
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
