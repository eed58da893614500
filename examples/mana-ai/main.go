// Command mana-ai shows how an AI service embeds package grant: it reads a
// mission key grant — the JSON answer of the auth server's
// POST /api/v1/me/ai-mission-grant — from a file named by its argument or
// from standard input, unwraps it and prints the outcome as one JSON line.
// It imports no database driver; a service that keeps the decrypt audit
// passes a grantpg.Store as UnwrapperConfig.Auditor.
//
// Configuration (environment):
//
//	MANA_AI_PRIVATE_KEY_PEM           the AI service's RSA private key (PKCS#8 or PKCS#1 PEM);
//	                                  unset: every grant is refused not-configured
//	MANA_AUTH_SIGNING_PUBLIC_KEY_PEM  the auth server's Ed25519 signing public key(s) (PKIX PEM), or
//	MANA_AUTH_JWKS_URL                its key set, e.g. https://auth.example.com/.well-known/jwks.json
//
// Output: {"outcome":"unwrapped","userId":…,"missionId":…,"expiresAt":…,"keySha256":…}
// (a fingerprint of the mission key, never the key), or
// {"outcome":"refused","reason":"expired"}, or {"outcome":"error",…} when
// the auth server's keys could not be fetched.
//
// Exit status: 0 unwrapped, 1 refused, 2 bad usage or configuration,
// 3 infrastructure trouble (try again later).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mana-how/mana-auth/grant"
)

// Exit statuses.
const (
	exitUnwrapped   = 0
	exitRefused     = 1
	exitUsage       = 2
	exitUnavailable = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, deps{args: os.Args[1:], getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// deps are the program's connections to the outside, replaced in tests.
type deps struct {
	args   []string
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time // nil: time.Now
}

// result is the line the program prints.
type result struct {
	Outcome   grant.Outcome `json:"outcome"`
	Reason    grant.Reason  `json:"reason,omitempty"`
	Error     string        `json:"error,omitempty"`
	UserID    string        `json:"userId,omitempty"`
	MissionID string        `json:"missionId,omitempty"`
	ExpiresAt *time.Time    `json:"expiresAt,omitempty"`
	KeySHA256 string        `json:"keySha256,omitempty"`
}

func run(ctx context.Context, d deps) int {
	logger := slog.New(slog.NewTextHandler(d.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	usage := func(format string, args ...any) int {
		fmt.Fprintf(d.stderr, "mana-ai: "+format+"\n", args...)
		fmt.Fprintln(d.stderr, "usage: mana-ai [grant.json]   (reads standard input without an argument or with -)")
		return exitUsage
	}
	if len(d.args) > 1 {
		return usage("at most one argument")
	}
	u, err := newUnwrapper(d, logger)
	if err != nil {
		return usage("%v", err)
	}
	in := d.stdin
	if len(d.args) == 1 && d.args[0] != "-" {
		f, err := os.Open(d.args[0])
		if err != nil {
			return usage("%v", err)
		}
		defer func() {
			if err := f.Close(); err != nil {
				logger.Warn("close grant file", "err", err)
			}
		}()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, grant.MaxGrantJSON+1))
	if err != nil {
		return usage("read grant: %v", err)
	}

	key, err := u.UnwrapJSON(ctx, data)
	defer clear(key)
	var res result
	code := exitUnwrapped
	switch reason := grant.ReasonOf(err); {
	case err == nil:
		var g grant.Grant
		if jerr := json.Unmarshal(data, &g); jerr != nil { // cannot fail: UnwrapJSON parsed it
			return usage("decode grant: %v", jerr)
		}
		sum := sha256.Sum256(key)
		exp := g.ExpiresAt.UTC()
		res = result{Outcome: grant.OutcomeUnwrapped, UserID: g.UserID, MissionID: g.MissionID, ExpiresAt: &exp,
			KeySHA256: hex.EncodeToString(sum[:])}
	case reason != "":
		res, code = result{Outcome: grant.OutcomeRefused, Reason: reason}, exitRefused
	default:
		res, code = result{Outcome: grant.OutcomeError, Error: err.Error()}, exitUnavailable
	}
	line, err := json.Marshal(res)
	if err != nil {
		return usage("encode result: %v", err)
	}
	if _, err := fmt.Fprintf(d.stdout, "%s\n", line); err != nil {
		logger.Error("write result", "err", err)
		return exitUnavailable
	}
	return code
}

// newUnwrapper builds the unwrapper from the environment.
func newUnwrapper(d deps, logger *slog.Logger) (*grant.Unwrapper, error) {
	privPEM := d.getenv("MANA_AI_PRIVATE_KEY_PEM")
	pubPEM := d.getenv("MANA_AUTH_SIGNING_PUBLIC_KEY_PEM")
	jwksURL := d.getenv("MANA_AUTH_JWKS_URL")
	cfg := grant.UnwrapperConfig{Logger: logger, Now: d.now}
	if privPEM == "" {
		logger.Warn("MANA_AI_PRIVATE_KEY_PEM is not set: every grant is refused not-configured")
		return grant.NewUnwrapper(cfg)
	}
	cfg.PrivateKeyPEM = []byte(privPEM)
	switch {
	case pubPEM != "" && jwksURL != "":
		return nil, errors.New("set MANA_AUTH_SIGNING_PUBLIC_KEY_PEM or MANA_AUTH_JWKS_URL, not both")
	case pubPEM != "":
		vks, err := grant.ParseVerifyKeysPEM([]byte(pubPEM))
		if err != nil {
			return nil, fmt.Errorf("MANA_AUTH_SIGNING_PUBLIC_KEY_PEM: %w", err)
		}
		if cfg.Keys, err = grant.NewStaticKeys(vks...); err != nil {
			return nil, fmt.Errorf("MANA_AUTH_SIGNING_PUBLIC_KEY_PEM: %w", err)
		}
	case jwksURL != "":
		keys, err := grant.NewJWKS(grant.JWKSConfig{URL: jwksURL, Logger: logger, Now: d.now})
		if err != nil {
			return nil, fmt.Errorf("MANA_AUTH_JWKS_URL: %w", err)
		}
		cfg.Keys = keys
	default:
		return nil, errors.New("MANA_AI_PRIVATE_KEY_PEM is set but neither MANA_AUTH_SIGNING_PUBLIC_KEY_PEM nor MANA_AUTH_JWKS_URL: grant signatures must be verified")
	}
	u, err := grant.NewUnwrapper(cfg)
	if err != nil {
		return nil, fmt.Errorf("MANA_AI_PRIVATE_KEY_PEM: %w", err)
	}
	return u, nil
}
