package vault

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// FormatVersion is the wrap format this package writes: AES-256-GCM, a
// 12-byte random IV, associated data from wrapAAD.
const FormatVersion = 1

// MasterKeySize is the size of a user's master key.
const MasterKeySize = 32

// ErrUnwrap is the one error of every failed unwrap: tampered ciphertext,
// an IV of the wrong size, the wrong KEK, an unknown KEK id, another user's
// row, an unknown format version. It is returned as is (never wrapped) by
// KeyRing and Unwrap, like crypto/rsa.ErrDecryption.
var ErrUnwrap = errors.New("vault: master key could not be unwrapped")

// Wrapped is a master key wrapped for one user, as stored in
// auth.encryption_vaults (kek_id, format_version, wrap_iv, wrapped_mk).
type Wrapped struct {
	KEKID         string
	FormatVersion int
	IV            []byte
	Ciphertext    []byte
}

// wrapAAD binds a wrap to its owner, its KEK and its format: a fixed label,
// the 16 bytes of the user id, the format version (4 bytes, big endian) and
// the KEK id, the only variable-length part, last — so no two inputs give
// the same bytes.
func wrapAAD(userID uuid.UUID, kekID string, version int) []byte {
	const label = "mana-auth/vault/master-key\x00"
	b := make([]byte, 0, len(label)+16+4+len(kekID))
	b = append(b, label...)
	b = append(b, userID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(version)) // #nosec G115 -- version is FormatVersion: Wrap passes it, Unwrap refuses any other first
	return append(b, kekID...)
}

// Wrap wraps mk for userID under kw's active KEK.
func Wrap(ctx context.Context, kw KeyWrapper, userID uuid.UUID, mk []byte) (Wrapped, error) {
	if userID == uuid.Nil {
		return Wrapped{}, ErrNoUser
	}
	if len(mk) != MasterKeySize {
		return Wrapped{}, fmt.Errorf("vault: wrap: master key of %d bytes, want %d", len(mk), MasterKeySize)
	}
	kekID := kw.ActiveKEKID()
	iv, ct, err := kw.Wrap(ctx, kekID, mk, wrapAAD(userID, kekID, FormatVersion))
	if err != nil {
		return Wrapped{}, err
	}
	if len(iv) != IVSize {
		return Wrapped{}, fmt.Errorf("vault: wrap: the key wrapper returned a %d-byte IV, want %d", len(iv), IVSize)
	}
	return Wrapped{KEKID: kekID, FormatVersion: FormatVersion, IV: iv, Ciphertext: ct}, nil
}

// Unwrap returns the master key of userID from w. Every failure is exactly
// ErrUnwrap; the caller zeroes the key when done with it.
func Unwrap(ctx context.Context, kw KeyWrapper, userID uuid.UUID, w Wrapped) ([]byte, error) {
	if w.FormatVersion != FormatVersion || len(w.IV) != IVSize || !ValidKEKID(w.KEKID) {
		return nil, ErrUnwrap
	}
	mk, err := kw.Unwrap(ctx, w.KEKID, w.IV, w.Ciphertext, wrapAAD(userID, w.KEKID, w.FormatVersion))
	if err != nil {
		return nil, ErrUnwrap
	}
	if len(mk) != MasterKeySize {
		clear(mk)
		return nil, ErrUnwrap
	}
	return mk, nil
}

// KeyCheckSize is the size of the key check value stored in
// auth.encryption_vaults.key_check in zero-knowledge mode.
const KeyCheckSize = 16

// keyCheckLabel is the message of the key check HMAC; a new derivation
// gets a new label.
const keyCheckLabel = "mana-auth vault key check v1"

// keyCheck is the key check value of mk: HMAC-SHA256(mk, keyCheckLabel)
// truncated to KeyCheckSize bytes. It commits to mk one way: with a
// 256-bit random key it reveals nothing usable about the key, and the
// chance that another key has the same value is 2^-128.
func keyCheck(mk []byte) []byte {
	m := hmac.New(sha256.New, mk)
	m.Write([]byte(keyCheckLabel))
	return m.Sum(nil)[:KeyCheckSize]
}
