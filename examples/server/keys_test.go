package main

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/lockout"
	"github.com/mana-how/mana-auth/manaauth"
	"github.com/mana-how/mana-auth/mfa"
	"github.com/mana-how/mana-auth/vault"
)

// Guards the move off the development KEK (README, "Moving off the
// development key"). Vaults made under the development ring (KEK id
// "dev") and a server restarted with only MANA_AUTH_KEK=<new> (id "1"):
// before, every vault answered 500 while /readyz said 200. Now /readyz is
// 503 with the exact ids in the log and a vault read is 503 with its cause
// logged; with both keys (MANA_AUTH_KEKS="1:<new>,dev:<old>") it is ready,
// rewrap moves the rows with a progress line per batch, and then the new
// key alone is enough. Without the readiness check the first /readyz is
// 200; without the KEK-id check in the vault the read is 500. The TOTP
// secrets, sealed under the same ring, follow: a factor made under the
// development key keeps the server unready until rewrap has moved it too.
func TestKeyTransitionIsSafeAndLoud(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testutil.DB(t)
	dev, _ := vault.DevelopmentKeyRing()
	old, err := vault.New(vault.Config{Pool: db.Runtime, Keys: dev})
	require.NoError(t, err)
	users := make([]uuid.UUID, 3)
	for i := range users {
		users[i] = uuid.New()
		_, err := db.Owner.Exec(ctx, "INSERT INTO auth.users (id, email) VALUES ($1, $2)", users[i], users[i].String()+"@x.com")
		require.NoError(t, err)
		_, err = old.Init(ctx, users[i], vault.Client{})
		require.NoError(t, err)
	}
	// An account with an active TOTP factor, made by a server on the
	// development ring.
	_, a0, _ := serveAt(t, db, map[string]string{"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION": "false"})
	reg, err := a0.svc.Register(ctx, manaauth.RegisterInput{Email: "totp@x.com", Password: e2ePass1}, manaauth.Client{})
	require.NoError(t, err)
	enr, err := a0.mfaSvc.Enroll(ctx, reg.User.ID, reg.Tokens.SessionID, e2ePass1, manaauth.Client{})
	require.NoError(t, err)
	totpSecret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enr.Secret)
	require.NoError(t, err)
	_, err = a0.mfaSvc.Confirm(ctx, reg.User.ID, totpAt(totpSecret, totpStep(time.Now())), manaauth.Client{})
	require.NoError(t, err)
	factorKEK := func() string {
		var id string
		require.NoError(t, db.Owner.QueryRow(ctx, `SELECT kek_id FROM auth.mfa_factors WHERE user_id = $1`, reg.User.ID).Scan(&id))
		return id
	}
	require.Equal(t, "dev", factorKEK())

	newKey := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("n", 32)))
	devKey := base64.StdEncoding.EncodeToString(make([]byte, 32))

	serve := func(env map[string]string) (*server, *authStack, *syncBuffer) {
		t.Helper()
		return serveAt(t, db, env)
	}
	readyz := func(s *server) int {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}

	// The new key alone: not ready, and why is in the log.
	s, a, logs := serve(map[string]string{"MANA_AUTH_KEK": newKey})
	assert.Equal(t, http.StatusServiceUnavailable, readyz(s))
	assert.Contains(t, logs.String(), `\"dev\" (3 vaults)`, "the log names the missing KEK id and its rows")
	assert.Contains(t, logs.String(), `\"dev\" (1 factors)`, "and the TOTP secrets under it")
	_, err = a.vaultSvc.Key(ctx, users[0], vault.Client{})
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err), "an undecryptable vault is 503, not 500: %v", err)
	assert.Contains(t, logs.String(), "wrapped under a KEK the key ring does not hold")

	// Both keys, the new one first: ready, and every vault opens.
	both := map[string]string{"MANA_AUTH_KEKS": "1:" + newKey + ",dev:" + devKey}
	s, a, _ = serve(both)
	assert.Equal(t, http.StatusOK, readyz(s))
	k, err := a.vaultSvc.Key(ctx, users[1], vault.Client{})
	require.NoError(t, err)
	assert.Equal(t, "dev", k.KEKID)

	// rewrap, two users a batch: a progress line per batch.
	both["MANA_AUTH_STATE_DIR"] = t.TempDir()
	both["DATABASE_URL"], both["MIGRATE_DATABASE_URL"] = db.RuntimeURL, db.OwnerURL
	out := &syncBuffer{}
	require.NoError(t, rewrap(ctx, mapEnv(both), out, []string{"-batch", "2"}), "%s", out)
	assert.GreaterOrEqual(t, strings.Count(out.String(), "rewrap: batch done"), 2, "%s", out)
	assert.Contains(t, out.String(), "moved=3")
	assert.Contains(t, out.String(), `rewrap of TOTP secrets finished" moved=1`)
	assert.Equal(t, "1", factorKEK())

	// Now the new key alone is enough.
	s, a, _ = serve(map[string]string{"MANA_AUTH_KEK": newKey})
	assert.Equal(t, http.StatusOK, readyz(s))
	k, err = a.vaultSvc.Key(ctx, users[2], vault.Client{})
	require.NoError(t, err)
	assert.Equal(t, "1", k.KEKID)
	// and the moved secret still gives the codes of the app.
	ch, err := a.svc.MFAChallenge(ctx, reg.User.ID, lockout.Password, manaauth.Client{})
	require.NoError(t, err)
	require.NotNil(t, ch)
	_, err = a.mfaSvc.Verify(ctx, ch.Token, mfa.Proof{Code: totpAt(totpSecret, totpStep(time.Now())+1)}, manaauth.Client{})
	require.NoError(t, err)
}

// serveAt builds the server on db with env (the state directory added),
// mounted and its readiness checked once.
func serveAt(t *testing.T, db *testutil.Database, env map[string]string) (*server, *authStack, *syncBuffer) {
	t.Helper()
	ctx := context.Background()
	env["MANA_AUTH_STATE_DIR"] = t.TempDir()
	cfg, err := LoadConfig(mapEnv(env))
	require.NoError(t, err)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	s := newServer(serverDeps{Config: cfg, Logger: logger, Pool: db.Runtime, Sources: sources()})
	a, err := newAuthStack(ctx, cfg, db.Runtime, s.metrics.registry, logger)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, a.Close()) })
	s.mountAuth(a)
	s.checkReady(ctx)
	return s, a, logs
}
