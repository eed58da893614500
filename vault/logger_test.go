package vault_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

// Guards "no silent embeds": a host that leaves Config.Logger nil gets
// the failures in slog.Default(), not in a discarding logger. A vault read
// under a KEK the ring does not hold must reach the default logger with
// its cause. (With the earlier default, slog.DiscardHandler, the buffer
// stays empty.) Not parallel: it swaps the process-wide default logger.
func TestNilLoggerLogsToTheDefaultLogger(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	ctx := context.Background()
	db := testutil.DB(t)
	u := newUser(t, db)
	first, err := vault.New(vault.Config{Pool: db.Runtime, KEK: bytes.Repeat([]byte{1}, 32)})
	require.NoError(t, err)
	_, err = first.Init(ctx, u, vault.Client{})
	require.NoError(t, err)

	other, err := vault.NewKeyRing(vault.KEK{ID: "2", Key: bytes.Repeat([]byte{2}, 32)})
	require.NoError(t, err)
	embedded, err := vault.New(vault.Config{Pool: db.Runtime, Keys: other}) // Logger nil
	require.NoError(t, err)
	_, err = embedded.Key(ctx, u, vault.Client{})
	require.Error(t, err)
	assert.Contains(t, buf.String(), "level=ERROR")
	assert.Contains(t, buf.String(), `kek_id=1`, "the cause, with the missing KEK id, reached the default logger")
}
