package grant

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The v1 wire format (api.md, "Mission key grants"). Two services read it,
// so every byte of it is fixed.
const (
	// ContextPrefix starts the HKDF info and the OAEP label of every v1
	// grant: context = ContextPrefix + userId + "|" + missionId.
	ContextPrefix = "mana-ai-mission-grant/v1|"
	// KDF is derivation.kdf of every v1 grant.
	KDF = "HKDF-SHA256"
	// SaltSize is the length of the random HKDF salt.
	SaltSize = 32
	// KeySize is the length of the mission data key (and of the user's
	// master key it is derived from).
	KeySize = 32
	// MaxMissionIDLength bounds missionId, in characters.
	MaxMissionIDLength = 200
	// MinRSABits is the smallest RSA key accepted on either side;
	// RecommendedRSABits (ASVS 5.0 11.2.3) is what new keys should have.
	MinRSABits         = 2048
	RecommendedRSABits = 3072
)

// The TTL bounds of Issue (api.md): a requested TTL is clamped to
// [MinTTL, MaxTTL]; none means DefaultTTL.
const (
	MinTTL     = time.Hour
	MaxTTL     = 30 * 24 * time.Hour
	DefaultTTL = 24 * time.Hour
)

// Grant is a mission key grant as it travels between the auth server and
// the AI service: the JSON answer of POST /api/v1/me/ai-mission-grant.
//
// The byte fields are kept as the base64 text (standard alphabet, padded)
// that was sent, because the signature covers that text, not the bytes.
type Grant struct {
	// WrappedKey is RSA-OAEP-SHA-256 (MGF1-SHA-256) of the 32-byte mission
	// data key, under the AI service's public key, with label
	// Label(UserID, MissionID, ExpiresAt).
	WrappedKey string     `json:"wrappedKey"`
	Derivation Derivation `json:"derivation"`
	// IssuedAt and ExpiresAt are whole seconds, RFC 3339, UTC. Only
	// ExpiresAt is bound (through the label and the signature); IssuedAt
	// is informative.
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	UserID    string    `json:"userId"`
	MissionID string    `json:"missionId"`
	// Signature is the base64 Ed25519 signature of SignedMessage by the
	// auth server's token-signing key SignatureKID (published in its JWKS).
	Signature    string `json:"signature"`
	SignatureKID string `json:"signatureKid"`
}

// Derivation says how the mission data key was derived from the user's
// master key: HKDF-SHA256 with Salt (base64) and Info (the context), 32
// bytes. A client holding the master key derives the same key from it.
type Derivation struct {
	KDF  string `json:"kdf"`
	Salt string `json:"salt"`
	Info string `json:"info"`
}

// Context is the v1 context of a grant: the HKDF info and the start of the
// OAEP label, "mana-ai-mission-grant/v1|" + userID + "|" + missionID.
func Context(userID, missionID string) string {
	return ContextPrefix + userID + "|" + missionID
}

// Label is the v1 OAEP label: Context + "|" + expiresAt as decimal Unix
// seconds. It binds user, mission and expiry to the wrapped key.
func Label(userID, missionID string, expiresAt time.Time) string {
	return Context(userID, missionID) + "|" + strconv.FormatInt(expiresAt.Unix(), 10)
}

// SignedMessage is the byte string the grant's signature covers:
// Label + "|" + salt (base64) + "|" + wrappedKey (base64).
func SignedMessage(label, saltB64, wrappedKeyB64 string) []byte {
	b := make([]byte, 0, len(label)+len(saltB64)+len(wrappedKeyB64)+2)
	b = append(b, label...)
	b = append(b, '|')
	b = append(b, saltB64...)
	b = append(b, '|')
	b = append(b, wrappedKeyB64...)
	return b
}

// ValidateMissionID checks a mission id: non-empty, at most
// MaxMissionIDLength characters of valid UTF-8, no '|' (the context's
// separator, so that no two (user, mission) pairs share a context) and no
// control characters (which PostgreSQL's jsonb, where security events keep
// the id, cannot all store).
func ValidateMissionID(id string) error {
	switch {
	case id == "":
		return errors.New("required")
	case !utf8.ValidString(id):
		return errors.New("must be valid UTF-8")
	case utf8.RuneCountInString(id) > MaxMissionIDLength:
		return errors.New("must be at most 200 characters")
	case strings.ContainsRune(id, '|'):
		return errors.New("must not contain '|'")
	case strings.ContainsFunc(id, unicode.IsControl):
		return errors.New("must not contain control characters")
	}
	return nil
}
