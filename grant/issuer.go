package grant

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
)

// KeySource gives the issuer a user's master key.
//
// MasterKey returns the user's 32-byte master key in a slice the issuer
// owns (it zeroes it after use). When the user has no vault it returns an
// error that classifies (autherr.Classify) as VAULT_NOT_FOUND; when the
// vault is in zero-knowledge mode (the server cannot read the key), one
// that classifies as ZK_ACTIVE; infrastructure trouble classifies as
// SERVICE_UNAVAILABLE. The reference server adapts vault.Service to it.
type KeySource interface {
	MasterKey(ctx context.Context, userID uuid.UUID) ([]byte, error)
}

// KeySourceFunc adapts a function to KeySource.
type KeySourceFunc func(ctx context.Context, userID uuid.UUID) ([]byte, error)

// MasterKey calls f.
func (f KeySourceFunc) MasterKey(ctx context.Context, userID uuid.UUID) ([]byte, error) {
	return f(ctx, userID)
}

// Signer signs grants with the auth server's current Ed25519 token-signing
// key and names that key's kid (which its JWKS publishes).
// *token.Tokens implements it.
type Signer interface {
	Sign(msg []byte) (sig []byte, kid string)
}

// Event describes an issued grant, for the GRANT_ISSUED security event. It
// holds no key material.
type Event struct {
	UserID       uuid.UUID
	MissionID    string
	ExpiresAt    time.Time
	SignatureKID string
	IP           netip.Addr // zero when unknown
	UserAgent    string     // "" when unknown
}

// Metadata is the event's metadata for a security event row: missionId,
// expiresAt (RFC 3339) and signatureKid.
func (e Event) Metadata() map[string]any {
	return map[string]any{
		"missionId":    e.MissionID,
		"expiresAt":    e.ExpiresAt.UTC().Format(time.RFC3339),
		"signatureKid": e.SignatureKID,
	}
}

// EventLogger records a GRANT_ISSUED security event. It must not fail the
// grant: an implementation logs (and counts) its own write failures, as
// lockout.Events.Log does.
type EventLogger interface {
	GrantIssued(ctx context.Context, e Event)
}

// EventLoggerFunc adapts a function to EventLogger.
type EventLoggerFunc func(ctx context.Context, e Event)

// GrantIssued calls f.
func (f EventLoggerFunc) GrantIssued(ctx context.Context, e Event) { f(ctx, e) }

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// PublicKeyPEM is the AI service's RSA public key
	// (MANA_AI_PUBLIC_KEY_PEM), parsed with ParsePublicKeyPEM; PublicKey
	// is the same key already parsed. Setting both is an error. With
	// neither the issuer is not configured: every Issue answers
	// GRANT_NOT_CONFIGURED (503).
	PublicKeyPEM []byte
	PublicKey    *rsa.PublicKey
	Keys         KeySource // required
	Signer       Signer    // required
	// Events receives one GRANT_ISSUED event per grant; nil records none.
	Events EventLogger
	Logger *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now
	Rand   io.Reader        // salts and OAEP; nil: crypto/rand
	// Registerer receives mana_auth_grants_issued_total; nil leaves it
	// unregistered.
	Registerer prometheus.Registerer
}

// Issuer mints mission key grants (the auth server's side). It is safe for
// concurrent use.
type Issuer struct {
	pub    *rsa.PublicKey
	keys   KeySource
	signer Signer
	events EventLogger
	logger *slog.Logger
	now    func() time.Time
	rand   io.Reader
	issued prometheus.Counter
}

// NewIssuer validates cfg. A public key under MinRSABits bits, or one that
// does not parse, is an error: the server should refuse to start.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.Keys == nil {
		return nil, errors.New("grant: IssuerConfig.Keys is required")
	}
	if cfg.Signer == nil {
		return nil, errors.New("grant: IssuerConfig.Signer is required")
	}
	i := &Issuer{pub: cfg.PublicKey, keys: cfg.Keys, signer: cfg.Signer, events: cfg.Events,
		logger: cfg.Logger, now: cfg.Now, rand: cfg.Rand,
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mana_auth_grants_issued_total",
			Help: "Mission key grants issued.",
		}),
	}
	switch {
	case len(cfg.PublicKeyPEM) > 0 && cfg.PublicKey != nil:
		return nil, errors.New("grant: set IssuerConfig.PublicKeyPEM or PublicKey, not both")
	case len(cfg.PublicKeyPEM) > 0:
		pub, err := ParsePublicKeyPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		i.pub = pub
	case cfg.PublicKey != nil:
		if err := checkRSABits(cfg.PublicKey); err != nil {
			return nil, fmt.Errorf("grant: RSA public key: %w", err)
		}
	}
	if i.logger == nil {
		i.logger = slog.Default()
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.rand == nil {
		i.rand = rand.Reader
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(i.issued); err != nil {
			return nil, fmt.Errorf("grant: register metrics: %w", err)
		}
	}
	return i, nil
}

// Configured reports whether the issuer has a public key; without one,
// every Issue answers GRANT_NOT_CONFIGURED.
func (i *Issuer) Configured() bool { return i.pub != nil }

// Request asks for a grant.
type Request struct {
	UserID    uuid.UUID
	MissionID string // see ValidateMissionID
	// TTL is the grant's lifetime: 0 means DefaultTTL; anything else is
	// clamped to [MinTTL, MaxTTL] and cut to whole seconds.
	TTL time.Duration
	// IP and UserAgent go into the security event; optional.
	IP        netip.Addr
	UserAgent string
}

// ClampTTL is the lifetime Issue gives a requested TTL: DefaultTTL for 0,
// else ttl clamped to [MinTTL, MaxTTL] and cut to whole seconds.
func ClampTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return DefaultTTL
	}
	return min(max(ttl, MinTTL), MaxTTL).Truncate(time.Second)
}

// Issue derives the mission data key of req's mission from the user's
// master key, wraps it for the AI service and signs the grant (wire format
// v1, api.md). issuedAt is now cut to whole seconds, expiresAt that plus
// the clamped TTL. A GRANT_ISSUED event (mission id, expiry, kid; no key
// bytes) is logged for every grant.
//
// Errors: GRANT_NOT_CONFIGURED (no public key; checked first),
// UNAUTHORIZED (nil user), VALIDATION_FAILED (mission id, with
// details.fields.missionId), VAULT_NOT_FOUND and ZK_ACTIVE (from the
// KeySource), SERVICE_UNAVAILABLE, INTERNAL.
func (i *Issuer) Issue(ctx context.Context, req Request) (*Grant, error) {
	if i.pub == nil {
		return nil, autherr.New(autherr.GrantNotConfigured, "")
	}
	if req.UserID == uuid.Nil {
		return nil, autherr.Wrap(autherr.Unauthorized, errors.New("grant: no user id"), "")
	}
	if err := ValidateMissionID(req.MissionID); err != nil {
		return nil, invalidMissionID(err.Error())
	}
	mk, err := i.keys.MasterKey(ctx, req.UserID)
	if err != nil {
		return nil, fmt.Errorf("grant: read master key: %w", err)
	}
	defer clear(mk)
	if len(mk) != KeySize {
		return nil, autherr.Wrap(autherr.Internal, fmt.Errorf("grant: the key source returned a %d-byte master key, want %d", len(mk), KeySize), "")
	}

	userID := req.UserID.String()
	issuedAt := i.now().UTC().Truncate(time.Second)
	expiresAt := issuedAt.Add(ClampTTL(req.TTL))
	g, err := i.mint(mk, userID, req.MissionID, issuedAt, expiresAt)
	if err != nil {
		return nil, err
	}
	i.issued.Inc()
	i.logger.LogAttrs(ctx, slog.LevelInfo, "grant: mission key grant issued",
		slog.String("user_id", userID), slog.String("mission_id", req.MissionID),
		slog.Time("expires_at", expiresAt), slog.String("signature_kid", g.SignatureKID))
	if i.events != nil {
		i.events.GrantIssued(ctx, Event{UserID: req.UserID, MissionID: req.MissionID, ExpiresAt: expiresAt,
			SignatureKID: g.SignatureKID, IP: req.IP, UserAgent: req.UserAgent})
	}
	return g, nil
}

// mint builds and signs the v1 grant of master key mk.
func (i *Issuer) mint(mk []byte, userID, missionID string, issuedAt, expiresAt time.Time) (*Grant, error) {
	salt := make([]byte, SaltSize)
	if _, err := io.ReadFull(i.rand, salt); err != nil {
		return nil, fmt.Errorf("grant: random salt: %w", err)
	}
	info := Context(userID, missionID)
	mdk, err := hkdf.Key(sha256.New, mk, salt, info, KeySize)
	if err != nil {
		return nil, fmt.Errorf("grant: derive mission key: %w", err)
	}
	defer clear(mdk)
	label := Label(userID, missionID, expiresAt)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), i.rand, i.pub, mdk, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("grant: wrap mission key: %w", err)
	}
	saltB64 := base64.StdEncoding.EncodeToString(salt)
	wrappedB64 := base64.StdEncoding.EncodeToString(wrapped)
	sig, kid := i.signer.Sign(SignedMessage(label, saltB64, wrappedB64))
	if len(sig) != ed25519.SignatureSize || kid == "" {
		return nil, fmt.Errorf("grant: the signer returned a %d-byte signature with kid %q, want %d bytes and a kid",
			len(sig), kid, ed25519.SignatureSize)
	}
	return &Grant{
		WrappedKey:   wrappedB64,
		Derivation:   Derivation{KDF: KDF, Salt: saltB64, Info: info},
		IssuedAt:     issuedAt,
		ExpiresAt:    expiresAt,
		UserID:       userID,
		MissionID:    missionID,
		Signature:    base64.StdEncoding.EncodeToString(sig),
		SignatureKID: kid,
	}, nil
}

// invalidMissionID is VALIDATION_FAILED with details.fields.missionId, the
// shape web.Invalid gives (grant does not import web outside the handler).
func invalidMissionID(reason string) error {
	return &autherr.Error{Code: autherr.ValidationFailed, Message: "invalid fields: missionId",
		Details: map[string]any{"fields": map[string]string{"missionId": reason}}}
}
