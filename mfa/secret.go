package mfa

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/vault"
)

// secretFormat is the format of a sealed TOTP secret this package
// writes: AES-256-GCM under a vault KEK, a 12-byte random IV, associated
// data from secretAAD.
const secretFormat = 1

// sealed is a TOTP secret as stored in auth.mfa_factors.
type sealed struct {
	KEKID   string
	Version int
	IV      []byte
	Box     []byte // ciphertext and tag
}

// errOpen is every failure to open a sealed secret.
var errOpen = errors.New("mfa: the TOTP secret could not be opened")

// secretAAD binds a sealed secret to its owner, its factor, its format and
// its KEK: a fixed label, the 16 bytes of the user id and of the factor
// id, the format (4 bytes, big endian) and the KEK id, the only part of
// variable length, last — so no two inputs give the same bytes. A sealed
// secret copied into another user's row, or another factor's, does not
// open.
func secretAAD(userID, factorID uuid.UUID, kekID string, version int) []byte {
	const label = "mana-auth/mfa/totp-secret\x00"
	b := make([]byte, 0, len(label)+16+16+4+len(kekID))
	b = append(b, label...)
	b = append(b, userID[:]...)
	b = append(b, factorID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(version)) // #nosec G115 -- a format version (1, 2, …), checked positive by the table
	return append(b, kekID...)
}

// seal seals secret for a factor under the active KEK of keys.
func seal(ctx context.Context, keys vault.KeyWrapper, userID, factorID uuid.UUID, secret []byte) (sealed, error) {
	kekID := keys.ActiveKEKID()
	iv, box, err := keys.Wrap(ctx, kekID, secret, secretAAD(userID, factorID, kekID, secretFormat))
	if err != nil {
		return sealed{}, fmt.Errorf("mfa: seal secret: %w", err)
	}
	if len(iv) != vault.IVSize {
		return sealed{}, fmt.Errorf("mfa: seal secret: the key wrapper returned a %d-byte IV, want %d", len(iv), vault.IVSize)
	}
	return sealed{KEKID: kekID, Version: secretFormat, IV: iv, Box: box}, nil
}

// open returns the secret of a factor; every failure is errOpen. The
// caller clears the secret when done.
func open(ctx context.Context, keys vault.KeyWrapper, userID, factorID uuid.UUID, s sealed) ([]byte, error) {
	if s.Version != secretFormat || len(s.IV) != vault.IVSize || !vault.ValidKEKID(s.KEKID) {
		return nil, errOpen
	}
	secret, err := keys.Unwrap(ctx, s.KEKID, s.IV, s.Box, secretAAD(userID, factorID, s.KEKID, s.Version))
	if err != nil {
		return nil, errOpen
	}
	return secret, nil
}
