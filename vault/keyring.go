package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Environment variables read by KeyRingFromEnv.
const (
	EnvKEK  = "MANA_AUTH_KEK"  // base64 of one 32-byte KEK (id "1")
	EnvKEKs = "MANA_AUTH_KEKS" // "2:base64,1:base64": several KEKs by id, the first active
)

// KEKSize is the size of a key-encryption key: AES-256.
const KEKSize = 32

// IVSize is the size of the random GCM nonce of every wrap.
const IVSize = 12

// DevelopmentKEKID is the id of the all-zero development KEK.
const DevelopmentKEKID = "dev"

// ErrNoKEK reports that neither MANA_AUTH_KEK nor MANA_AUTH_KEKS is set.
var ErrNoKEK = errors.New("vault: no KEK configured: set " + EnvKEK + " (base64 of 32 bytes) or " + EnvKEKs)

// KeyWrapper holds the key-encryption keys. KeyRing implements it with keys
// from the environment; a cloud KMS can stand in by implementing it too.
//
// Contract: Wrap encrypts plaintext under the KEK kekID with the associated
// data aad, using a fresh random 12-byte IV for every call, and returns the
// IV and the ciphertext (with its authentication tag). Unwrap reverses it;
// every failure — unknown kekID, IV of the wrong size, tampered ciphertext,
// other associated data, a backend that cannot decrypt — returns exactly
// ErrUnwrap, so no caller can tell the reasons apart (log the inputs that
// are not secret, such as kekID, instead). Neither method may log or keep
// the plaintext.
type KeyWrapper interface {
	// ActiveKEKID is the id of the KEK new wraps use.
	ActiveKEKID() string
	Wrap(ctx context.Context, kekID string, plaintext, aad []byte) (iv, ciphertext []byte, err error)
	Unwrap(ctx context.Context, kekID string, iv, ciphertext, aad []byte) ([]byte, error)
}

var _ KeyWrapper = (*KeyRing)(nil)

// KeyRing holds AES-256-GCM KEKs by id; one of them is active. It is safe
// for concurrent use. Its String never shows key material.
type KeyRing struct {
	active string
	ids    []string
	aeads  map[string]cipher.AEAD
	rand   io.Reader
}

var kekIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidKEKID reports whether id may name a KEK: 1 to 64 of A-Z a-z 0-9 . _ -
// (the database refuses anything else in kek_id).
func ValidKEKID(id string) bool { return kekIDPattern.MatchString(id) }

// KEK is one key-encryption key for NewKeyRing.
type KEK struct {
	ID  string
	Key []byte // exactly KEKSize bytes; NewKeyRing copies it into the cipher
}

// NewKeyRing returns a ring of keys; the first is active. Ids must be valid
// (ValidKEKID) and unique; every key exactly 32 bytes.
func NewKeyRing(keys ...KEK) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, ErrNoKEK
	}
	kr := &KeyRing{active: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys)), rand: rand.Reader}
	for i, k := range keys {
		if !ValidKEKID(k.ID) {
			return nil, fmt.Errorf("vault: KEK %d: id %q: want 1 to 64 of A-Z a-z 0-9 . _ -", i+1, k.ID)
		}
		if _, dup := kr.aeads[k.ID]; dup {
			return nil, fmt.Errorf("vault: KEK id %q appears twice", k.ID)
		}
		if len(k.Key) != KEKSize {
			return nil, fmt.Errorf("vault: KEK %q: %d bytes, want exactly %d", k.ID, len(k.Key), KEKSize)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("vault: KEK %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("vault: KEK %q: %w", k.ID, err)
		}
		kr.aeads[k.ID] = aead
		kr.ids = append(kr.ids, k.ID)
	}
	return kr, nil
}

// ParseKEKs builds the ring from the values of MANA_AUTH_KEK (single) and
// MANA_AUTH_KEKS (multi). single is base64 (standard, padded) of exactly 32
// bytes and gets the id "1"; multi is a comma-separated list of id:base64,
// the first active (so rotating from MANA_AUTH_KEK to a new key is
// MANA_AUTH_KEKS="2:<new>,1:<old>"). Both empty returns ErrNoKEK; both set
// is an error. Errors name the variable and never quote key material.
func ParseKEKs(single, multi string) (*KeyRing, error) {
	single, multi = strings.TrimSpace(single), strings.TrimSpace(multi)
	switch {
	case single == "" && multi == "":
		return nil, ErrNoKEK
	case single != "" && multi != "":
		return nil, fmt.Errorf("vault: both %s and %s are set: set one of them", EnvKEK, EnvKEKs)
	case single != "":
		key, err := decodeKEK(single)
		if err != nil {
			return nil, fmt.Errorf("vault: %s: %w", EnvKEK, err)
		}
		defer clear(key)
		return NewKeyRing(KEK{ID: "1", Key: key})
	}
	var keys []KEK
	defer func() {
		for _, k := range keys {
			clear(k.Key)
		}
	}()
	for i, entry := range strings.Split(multi, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(entry), ":")
		id = strings.TrimSpace(id)
		if !ok {
			return nil, fmt.Errorf("vault: %s entry %d: want id:base64", EnvKEKs, i+1)
		}
		if !ValidKEKID(id) {
			return nil, fmt.Errorf("vault: %s entry %d: id %q: want 1 to 64 of A-Z a-z 0-9 . _ -", EnvKEKs, i+1, id)
		}
		key, err := decodeKEK(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("vault: %s entry %d (id %q): %w", EnvKEKs, i+1, id, err)
		}
		keys = append(keys, KEK{ID: id, Key: key})
	}
	kr, err := NewKeyRing(keys...)
	if err != nil {
		return nil, fmt.Errorf("vault: %s: %w", EnvKEKs, err)
	}
	return kr, nil
}

// decodeKEK decodes base64 of exactly 32 bytes. Its errors never quote the
// input.
func decodeKEK(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not valid base64 (standard alphabet, padded)")
	}
	if len(key) != KEKSize {
		clear(key)
		return nil, fmt.Errorf("decodes to %d bytes, want exactly %d", len(key), KEKSize)
	}
	return key, nil
}

// DevelopmentKeyRing returns a ring holding only the all-zero KEK (id
// "dev") and the warning the server must log at every start. Anyone can
// unwrap what it wraps: never use it in production.
func DevelopmentKeyRing() (*KeyRing, string) {
	kr, err := NewKeyRing(KEK{ID: DevelopmentKEKID, Key: make([]byte, KEKSize)})
	if err != nil {
		panic("vault: development key ring: " + err.Error()) // unreachable: constant input
	}
	return kr, "vault: " + EnvKEK + " is not set: using the all-zero development KEK; " +
		"every vault key is readable by anyone with the database. Never run production like this."
}

// KeyRingFromEnv reads MANA_AUTH_KEK / MANA_AUTH_KEKS through getenv. In
// production a missing, malformed or all-zero KEK is an error naming the
// variable (fatal at boot). In development a missing KEK gives the
// development ring and a warning to log; a malformed one is still an error.
func KeyRingFromEnv(production bool, getenv func(string) string) (kr *KeyRing, warning string, err error) {
	kr, err = ParseKEKs(getenv(EnvKEK), getenv(EnvKEKs))
	switch {
	case errors.Is(err, ErrNoKEK) && !production:
		kr, warning = DevelopmentKeyRing()
		return kr, warning, nil
	case err != nil:
		return nil, "", err
	}
	if production && kr.hasZeroKey() {
		return nil, "", fmt.Errorf("vault: %s/%s: an all-zero KEK is refused in production", EnvKEK, EnvKEKs)
	}
	return kr, "", nil
}

// hasZeroKey reports whether a KEK is all zero bytes, by testing whether the
// development KEK opens what it sealed.
func (kr *KeyRing) hasZeroKey() bool {
	dev, _ := DevelopmentKeyRing()
	nonce := make([]byte, IVSize)
	// #nosec G407 -- the zero nonce seals a fixed probe under the public all-zero
	// development key, to recognise that key; nothing secret is encrypted.
	probe := dev.aeads[DevelopmentKEKID].Seal(nil, nonce, []byte("probe"), nil)
	for _, a := range kr.aeads {
		if _, err := a.Open(nil, nonce, probe, nil); err == nil {
			return true
		}
	}
	return false
}

// ActiveKEKID is the id of the KEK new wraps use.
func (kr *KeyRing) ActiveKEKID() string { return kr.active }

// IDs lists the KEK ids, the active one first.
func (kr *KeyRing) IDs() []string { return append([]string(nil), kr.ids...) }

// String shows the ids, never key material.
func (kr *KeyRing) String() string {
	return fmt.Sprintf("vault.KeyRing{active: %q, ids: %q}", kr.active, kr.ids)
}

// Wrap seals plaintext with the KEK kekID and a fresh random 12-byte IV.
func (kr *KeyRing) Wrap(_ context.Context, kekID string, plaintext, aad []byte) ([]byte, []byte, error) {
	aead, ok := kr.aeads[kekID]
	if !ok {
		return nil, nil, fmt.Errorf("vault: wrap: no KEK %q in the key ring", kekID)
	}
	iv := make([]byte, IVSize)
	if _, err := io.ReadFull(kr.rand, iv); err != nil {
		return nil, nil, fmt.Errorf("vault: wrap: random IV: %w", err)
	}
	return iv, aead.Seal(nil, iv, plaintext, aad), nil
}

// Unwrap opens what Wrap sealed; every failure is ErrUnwrap.
func (kr *KeyRing) Unwrap(_ context.Context, kekID string, iv, ciphertext, aad []byte) ([]byte, error) {
	aead, ok := kr.aeads[kekID]
	if !ok || len(iv) != aead.NonceSize() || len(ciphertext) < aead.Overhead() {
		return nil, ErrUnwrap
	}
	pt, err := aead.Open(nil, iv, ciphertext, aad)
	if err != nil {
		return nil, ErrUnwrap
	}
	return pt, nil
}

// Has reports whether the ring holds a KEK with the given id.
func (kr *KeyRing) Has(kekID string) bool {
	_, ok := kr.aeads[kekID]
	return ok
}
