package passkey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"

	"github.com/mana-how/mana-auth/lockout"
)

// ipKey is the limiter key of a client address.
func ipKey(ip netip.Addr) string {
	if ip.IsValid() {
		return "ip:" + ip.Unmap().String()
	}
	return "ip:unknown"
}

// credentialKey is the limiter key of a credential id: a digest, since
// ids run to 1023 bytes.
func credentialKey(id []byte) string {
	h := sha256.Sum256(id)
	return "cred:" + hex.EncodeToString(h[:16])
}

// limitOptions takes one unit of the options limit of the client's IP.
//
// Errors: RATE_LIMITED, SERVICE_UNAVAILABLE (a shared limiter that
// cannot answer: never let through unchecked).
func (s *Service) limitOptions(ctx context.Context, ip netip.Addr) error {
	ok, retry, err := s.limits.Options.Allow(ctx, ipKey(ip))
	if err != nil {
		return err
	}
	if !ok {
		return lockout.LimitError(retry)
	}
	return nil
}

// checkCooldown answers RATE_LIMITED while key cools down after too many
// failed verifications; it consumes nothing.
func (s *Service) checkCooldown(ctx context.Context, key string) error {
	ok, retry, err := s.limits.Cooldown.Peek(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return lockout.LimitError(retry)
	}
	return nil
}

// countFailure counts one failed verification for key. The failure that
// uses up the key's budget (Failures has no unit left after it) starts
// the cooldown, so the next verification of the key is refused for
// CooldownRate.Period whatever it carries.
func (s *Service) countFailure(ctx context.Context, key string) error {
	ok, _, err := s.limits.Failures.Allow(ctx, key)
	if err != nil {
		return err
	}
	if ok {
		if ok, _, err = s.limits.Failures.Peek(ctx, key); err != nil {
			return err
		}
	}
	if !ok {
		// Refused means the cooldown holds already (a concurrent failure
		// started it): nothing more to do.
		if _, _, err := s.limits.Cooldown.Allow(ctx, key); err != nil {
			return err
		}
	}
	return nil
}
