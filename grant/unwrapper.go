package grant

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
)

// Reason says why an unwrap was refused (api.md).
type Reason string

// The reasons of a refused unwrap.
const (
	// ReasonNotConfigured: the unwrapper has no private key
	// (MANA_AI_PRIVATE_KEY_PEM unset).
	ReasonNotConfigured Reason = "not-configured"
	// ReasonExpired: an authentic grant past its expiresAt.
	ReasonExpired Reason = "expired"
	// ReasonMalformed: the input is not a v1 grant document (not JSON,
	// a field missing or of the wrong type, kdf not HKDF-SHA256, a user
	// id that is not a UUID, a mission id ValidateMissionID refuses).
	ReasonMalformed Reason = "malformed"
	// ReasonWrapRejected: the grant is not authentic or does not open: an
	// unknown kid, a bad or missing signature, any edited field, bad
	// base64 in a signed field, or an OAEP decryption failure. Every one
	// of them is the same error.
	ReasonWrapRejected Reason = "wrap-rejected"
)

// Failure is Unwrap's refusal. It carries only the reason, like
// crypto/rsa.ErrDecryption, so that the answer tells an attacker nothing
// more; the precise cause goes to the unwrapper's log and metrics. Two
// Failures with the same reason are equal, and errors.Is matches on the
// reason: errors.Is(err, &grant.Failure{Reason: grant.ReasonExpired}).
type Failure struct {
	Reason Reason
}

func (f *Failure) Error() string { return "grant: unwrap refused: " + string(f.Reason) }

// Is reports whether target is a *Failure with the same reason.
func (f *Failure) Is(target error) bool {
	t, ok := target.(*Failure)
	return ok && t != nil && f != nil && t.Reason == f.Reason
}

// ReasonOf returns the reason of a *Failure in err's chain, or "" when err
// is not a refusal (nil, or an infrastructure error).
func ReasonOf(err error) Reason {
	var f *Failure
	if errors.As(err, &f) && f != nil {
		return f.Reason
	}
	return ""
}

// ErrUnknownKey is what a VerifyKeys returns for a kid it does not hold
// (token.ErrUnknownKey).
var ErrUnknownKey = token.ErrUnknownKey

// VerifyKeys resolves the kid of a grant's signature to the auth server's
// Ed25519 public key (token.KeySource). VerifyKey returns ErrUnknownKey
// (possibly wrapped) when the kid is not among the server's keys — the
// grant is then refused wrap-rejected — and any other error when the keys
// cannot be obtained (the JWKS is unreachable), which Unwrap passes on as
// an infrastructure error, never as a refusal. StaticKeys and *JWKS
// implement it.
type VerifyKeys = token.KeySource

// StaticKeys is a fixed set of verification keys by kid (token.StaticKeys).
type StaticKeys = token.StaticKeys

// NewStaticKeys indexes keys by ID (the thumbprint when empty); see
// token.NewStaticKeys.
func NewStaticKeys(keys ...VerifyKey) (*StaticKeys, error) { return token.NewStaticKeys(keys...) }

// JWKS fetches and caches the auth server's keys (token.JWKS).
type JWKS = token.JWKS

// JWKSConfig configures a JWKS (token.JWKSConfig).
type JWKSConfig = token.JWKSConfig

// JWKS defaults (token's).
const (
	DefaultJWKSMinRefresh = token.DefaultJWKSMinRefresh
	DefaultJWKSMaxAge     = token.DefaultJWKSMaxAge
	DefaultJWKSTimeout    = token.DefaultJWKSTimeout
	MaxJWKSBytes          = token.MaxJWKSBytes
)

// NewJWKS is token.NewJWKS with the AI side's metric name
// (mana_ai_grant_jwks_fetches_total) unless cfg names another.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	if cfg.MetricName == "" {
		cfg.MetricName = "mana_ai_grant_jwks_fetches_total"
	}
	return token.NewJWKS(cfg)
}

// Outcome is the result of one unwrap attempt, for the audit.
type Outcome string

// The outcomes of an unwrap attempt.
const (
	OutcomeUnwrapped Outcome = "unwrapped" // the key was returned
	OutcomeRefused   Outcome = "refused"   // a Failure; Attempt.Reason says which
	OutcomeError     Outcome = "error"     // no verdict: the signing keys could not be obtained
)

// Attempt is one unwrap attempt as the Auditor sees it. It never holds key
// material. UserID, MissionID, SignatureKID and ExpiresAt are what the
// grant claims — authenticated only when Outcome is OutcomeUnwrapped (or
// the reason is expired) — and zero when the grant did not carry a
// well-formed value.
type Attempt struct {
	UserID       uuid.UUID
	MissionID    string
	SignatureKID string
	ExpiresAt    time.Time
	Outcome      Outcome
	Reason       Reason // set when Outcome is OutcomeRefused
	At           time.Time
}

// Auditor records unwrap attempts; grantpg.Store writes them to
// mana_ai.decrypt_audit. RecordUnwrap's error makes a successful unwrap
// fail (the key is not released unaudited); for a refusal it is logged and
// counted.
type Auditor interface {
	RecordUnwrap(ctx context.Context, a Attempt) error
}

// UnwrapperConfig configures an Unwrapper.
type UnwrapperConfig struct {
	// PrivateKeyPEM is the AI service's RSA private key
	// (MANA_AI_PRIVATE_KEY_PEM), parsed with ParsePrivateKeyPEM;
	// PrivateKey is the same already parsed. Setting both is an error.
	// With neither the unwrapper is not configured and refuses every
	// grant with ReasonNotConfigured.
	PrivateKeyPEM []byte
	PrivateKey    *rsa.PrivateKey
	// Keys checks grant signatures: StaticKeys (the server's signing
	// public keys from PEM) or a *JWKS. Required with a private key.
	Keys VerifyKeys
	// Auditor, when set, records every attempt.
	Auditor Auditor
	Logger  *slog.Logger     // nil: slog.Default()
	Now     func() time.Time // nil: time.Now
	// Registerer receives mana_ai_grant_unwraps_total{outcome,reason} and
	// mana_ai_grant_audit_failures_total; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Unwrapper opens mission key grants (the AI service's side). It is safe
// for concurrent use.
type Unwrapper struct {
	priv    *rsa.PrivateKey
	keys    VerifyKeys
	auditor Auditor
	logger  *slog.Logger
	now     func() time.Time
	// decrypt is rsa.DecryptOAEP with SHA-256; a field so that a test can
	// count the RSA operations.
	decrypt       func(priv *rsa.PrivateKey, ciphertext, label []byte) ([]byte, error)
	unwraps       *prometheus.CounterVec
	auditFailures prometheus.Counter
}

// NewUnwrapper validates cfg. A private key that does not parse or is
// under MinRSABits bits is an error, as is a private key without Keys:
// signatures are always checked.
func NewUnwrapper(cfg UnwrapperConfig) (*Unwrapper, error) {
	u := &Unwrapper{priv: cfg.PrivateKey, keys: cfg.Keys, auditor: cfg.Auditor, logger: cfg.Logger, now: cfg.Now,
		decrypt: decryptOAEP,
		unwraps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mana_ai_grant_unwraps_total",
			Help: "Mission key grant unwrap attempts by outcome and reason.",
		}, []string{"outcome", "reason"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mana_ai_grant_audit_failures_total",
			Help: "Unwrap attempts whose audit row could not be written (each logged with its cause).",
		}),
	}
	switch {
	case len(cfg.PrivateKeyPEM) > 0 && cfg.PrivateKey != nil:
		return nil, errors.New("grant: set UnwrapperConfig.PrivateKeyPEM or PrivateKey, not both")
	case len(cfg.PrivateKeyPEM) > 0:
		priv, err := ParsePrivateKeyPEM(cfg.PrivateKeyPEM)
		if err != nil {
			return nil, err
		}
		u.priv = priv
	case cfg.PrivateKey != nil:
		if err := checkRSABits(&cfg.PrivateKey.PublicKey); err != nil {
			return nil, fmt.Errorf("grant: RSA private key: %w", err)
		}
		if err := cfg.PrivateKey.Validate(); err != nil {
			return nil, fmt.Errorf("grant: RSA private key: %w", err)
		}
	}
	if u.priv != nil && u.keys == nil {
		return nil, errors.New("grant: UnwrapperConfig.Keys is required: grant signatures are always verified (give the auth server's signing public keys or its JWKS URL)")
	}
	if u.logger == nil {
		u.logger = slog.Default()
	}
	if u.now == nil {
		u.now = time.Now
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{u.unwraps, u.auditFailures} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("grant: register metrics: %w", err)
			}
		}
	}
	return u, nil
}

// Configured reports whether the unwrapper has a private key.
func (u *Unwrapper) Configured() bool { return u.priv != nil }

func decryptOAEP(priv *rsa.PrivateKey, ciphertext, label []byte) ([]byte, error) {
	return rsa.DecryptOAEP(sha256.New(), nil, priv, ciphertext, label)
}

// MaxGrantJSON bounds the input of UnwrapJSON: a v1 grant under a 16384-bit
// key with a 200-character mission id is far below it.
const MaxGrantJSON = 16 << 10

// UnwrapJSON decodes a grant (the JSON answer of the auth server) and
// unwraps it. Input that is not a JSON object of the grant's shape, or
// longer than MaxGrantJSON, is refused ReasonMalformed; otherwise it is
// Unwrap.
func (u *Unwrapper) UnwrapJSON(ctx context.Context, data []byte) ([]byte, error) {
	if u.priv == nil {
		return u.finish(ctx, attempt{}, nil, ReasonNotConfigured, "no private key")
	}
	if len(data) > MaxGrantJSON {
		return u.finish(ctx, attempt{}, nil, ReasonMalformed, "grant JSON too long")
	}
	var g Grant
	if err := json.Unmarshal(data, &g); err != nil {
		return u.finish(ctx, attempt{}, nil, ReasonMalformed, "grant is not JSON of the grant's shape")
	}
	return u.Unwrap(ctx, &g)
}

// attempt is what Unwrap has learned about a grant so far.
type attempt struct {
	userID    uuid.UUID
	missionID string
	kid       string
	expiresAt time.Time
}

// Unwrap checks g and returns its 32-byte mission data key; the caller
// should clear it after use. In order:
//
//  1. without a private key: ReasonNotConfigured;
//  2. the document's shape (wrappedKey, salt, info, issuedAt and
//     expiresAt present, kdf HKDF-SHA256, a canonical UUID as user id, a
//     valid mission id): else ReasonMalformed;
//  3. authenticity, before any RSA work: derivation.info must be the v1
//     context of userId and missionId, and the signature — present — by
//     the key signatureKid names must verify over the v1 message: else
//     ReasonWrapRejected (an unsigned grant included);
//  4. expiry, on the injected clock, at the whole second the label binds:
//     at or after it, ReasonExpired;
//  5. RSA-OAEP-SHA-256 decryption with the v1 label: any failure (bad
//     base64, wrong length, wrong key, edited label) is ReasonWrapRejected
//     after exactly one RSA private-key operation, so every decryption
//     failure is the same error and takes the same work.
//
// Refusals are *Failure. An error that is not a *Failure means no verdict
// was reached: the signing keys could not be obtained (SERVICE_UNAVAILABLE),
// or the Auditor failed to record a successful unwrap, in which case the key
// is withheld. With an Auditor, every call records one Attempt.
func (u *Unwrapper) Unwrap(ctx context.Context, g *Grant) ([]byte, error) {
	if u.priv == nil {
		return u.finish(ctx, attempt{}, nil, ReasonNotConfigured, "no private key")
	}
	if g == nil {
		return u.finish(ctx, attempt{}, nil, ReasonMalformed, "nil grant")
	}
	a, stage := shape(g)
	if stage != "" {
		return u.finish(ctx, a, nil, ReasonMalformed, stage)
	}

	// Authenticity. The label and the signed message are rebuilt from the
	// fields as received: any edit changes them.
	label := Label(g.UserID, g.MissionID, g.ExpiresAt)
	if subtle.ConstantTimeCompare([]byte(g.Derivation.Info), []byte(Context(g.UserID, g.MissionID))) != 1 {
		return u.finish(ctx, a, nil, ReasonWrapRejected, "derivation.info is not the context of userId and missionId")
	}
	sig, err := base64.StdEncoding.DecodeString(g.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return u.finish(ctx, a, nil, ReasonWrapRejected, "signature is missing or not base64 of 64 bytes")
	}
	if a.kid == "" {
		return u.finish(ctx, a, nil, ReasonWrapRejected, "signatureKid is missing, too long or not printable")
	}
	pub, err := u.keys.VerifyKey(ctx, g.SignatureKID)
	if errors.Is(err, ErrUnknownKey) {
		return u.finish(ctx, a, nil, ReasonWrapRejected, "unknown signature kid")
	}
	if err != nil {
		return u.fail(ctx, a, err)
	}
	if !ed25519.Verify(pub, SignedMessage(label, g.Derivation.Salt, g.WrappedKey), sig) {
		return u.finish(ctx, a, nil, ReasonWrapRejected, "signature does not verify")
	}

	// The grant is authentic: its expiry is the server's.
	if !u.now().Before(time.Unix(g.ExpiresAt.Unix(), 0)) {
		return u.finish(ctx, a, nil, ReasonExpired, "expired")
	}

	// Decryption: one RSA operation whatever the input, one error for
	// every failure.
	k := u.priv.Size()
	salt, errSalt := base64.StdEncoding.DecodeString(g.Derivation.Salt)
	ct, errCT := base64.StdEncoding.DecodeString(g.WrappedKey)
	inputOK := errSalt == nil && len(salt) == SaltSize && errCT == nil && len(ct) == k
	if !inputOK {
		ct = make([]byte, k) // a well-formed stand-in: 1 < N, decrypts to garbage
		ct[k-1] = 1
	}
	key, err := u.decrypt(u.priv, ct, []byte(label))
	if !inputOK || err != nil || len(key) != KeySize {
		clear(key)
		return u.finish(ctx, a, nil, ReasonWrapRejected, "decryption failed")
	}
	return u.finish(ctx, a, key, "", "")
}

// shape checks the fields Unwrap needs before it can verify anything and
// returns what the grant claims; stage is "" when the shape is right, else
// what is wrong (for the log).
func shape(g *Grant) (attempt, string) {
	var a attempt
	if err := ValidateMissionID(g.MissionID); err == nil {
		a.missionID = g.MissionID
	}
	if validKID(g.SignatureKID) {
		a.kid = g.SignatureKID
	}
	if !g.ExpiresAt.IsZero() {
		a.expiresAt = time.Unix(g.ExpiresAt.Unix(), 0).UTC()
	}
	id, err := uuid.Parse(g.UserID)
	if err != nil || id.String() != g.UserID || id == uuid.Nil {
		return a, "userId is not a canonical UUID"
	}
	a.userID = id
	switch {
	case a.missionID == "":
		return a, "missionId is invalid"
	case g.Derivation.KDF != KDF:
		return a, "derivation.kdf is not " + KDF
	case g.WrappedKey == "", g.Derivation.Salt == "", g.Derivation.Info == "":
		return a, "a field is missing"
	case g.ExpiresAt.IsZero(), g.IssuedAt.IsZero():
		return a, "issuedAt or expiresAt is missing"
	}
	return a, ""
}

// fail ends an attempt without a verdict (the signing keys could not be
// obtained): audited as an error, answered SERVICE_UNAVAILABLE.
func (u *Unwrapper) fail(ctx context.Context, a attempt, cause error) ([]byte, error) {
	u.unwraps.WithLabelValues(string(OutcomeError), "").Inc()
	u.logger.LogAttrs(ctx, slog.LevelError, "grant: unwrap: signing keys unavailable",
		slog.String("user_id", uuidOrEmpty(a.userID)), slog.String("mission_id", a.missionID),
		slog.String("signature_kid", a.kid), slog.Any("err", cause))
	_ = u.audit(ctx, a, OutcomeError, "") // audit logs and counts its own failure; the answer is 503 already
	return nil, autherr.Wrap(autherr.ServiceUnavailable, fmt.Errorf("grant: unwrap: signing keys: %w", cause), "")
}

// finish ends an attempt with a verdict: key on success, else reason
// (stage is the precise cause, for the log only). It counts and audits the
// attempt; a successful unwrap whose audit row fails is withheld.
func (u *Unwrapper) finish(ctx context.Context, a attempt, key []byte, reason Reason, stage string) ([]byte, error) {
	if reason == "" {
		if err := u.audit(ctx, a, OutcomeUnwrapped, ""); err != nil {
			clear(key)
			u.unwraps.WithLabelValues(string(OutcomeError), "").Inc()
			return nil, autherr.Wrap(autherr.ServiceUnavailable, fmt.Errorf("grant: unwrap: audit: %w", err), "")
		}
		u.unwraps.WithLabelValues(string(OutcomeUnwrapped), "").Inc()
		u.logger.LogAttrs(ctx, slog.LevelInfo, "grant: unwrapped",
			slog.String("user_id", uuidOrEmpty(a.userID)), slog.String("mission_id", a.missionID),
			slog.String("signature_kid", a.kid), slog.Time("expires_at", a.expiresAt))
		return key, nil
	}
	u.unwraps.WithLabelValues(string(OutcomeRefused), string(reason)).Inc()
	level := slog.LevelWarn
	if reason == ReasonExpired || reason == ReasonNotConfigured {
		level = slog.LevelInfo
	}
	u.logger.LogAttrs(ctx, level, "grant: unwrap refused",
		slog.String("reason", string(reason)), slog.String("cause", stage),
		slog.String("user_id", uuidOrEmpty(a.userID)), slog.String("mission_id", a.missionID),
		slog.String("signature_kid", a.kid))
	// The audit error of a refusal is logged and counted by audit; the
	// refusal stands.
	_ = u.audit(ctx, a, OutcomeRefused, reason)
	return nil, &Failure{Reason: reason}
}

// audit records the attempt with the Auditor, if any; a failure is logged
// at warn and counted, and returned.
func (u *Unwrapper) audit(ctx context.Context, a attempt, outcome Outcome, reason Reason) error {
	if u.auditor == nil {
		return nil
	}
	err := u.auditor.RecordUnwrap(ctx, Attempt{UserID: a.userID, MissionID: a.missionID, SignatureKID: a.kid,
		ExpiresAt: a.expiresAt, Outcome: outcome, Reason: reason, At: u.now()})
	if err != nil {
		u.auditFailures.Inc()
		u.logger.LogAttrs(ctx, slog.LevelWarn, "grant: unwrap attempt not audited",
			slog.String("outcome", string(outcome)), slog.String("reason", string(reason)),
			slog.String("user_id", uuidOrEmpty(a.userID)), slog.Any("err", err))
	}
	return err
}

// MaxKIDLength bounds signatureKid.
const MaxKIDLength = 256

// validKID reports whether kid is a plausible key id: 1 to MaxKIDLength
// bytes of printable UTF-8 (so that it can be logged and stored as is).
func validKID(kid string) bool {
	return kid != "" && len(kid) <= MaxKIDLength && utf8.ValidString(kid) && !strings.ContainsFunc(kid, unicode.IsControl)
}

func uuidOrEmpty(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}
