package vault_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	dbutil "github.com/mana-how/mana-auth/internal/testutil"
	"github.com/mana-how/mana-auth/vault"
)

// The audit rows of key reads are committed with group commit. The
// property that matters: no key leaves Key unless its audit row has
// committed. The tests hold the audit table locked (EXCLUSIVE: reads pass,
// inserts wait) to line up batches deterministically.

// lockAudit locks auth.encryption_vault_audit against inserts until the
// returned transaction ends.
func lockAudit(t *testing.T, db *dbutil.Database) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Owner.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) }) // a no-op once committed
	_, err = tx.Exec(ctx, `LOCK TABLE auth.encryption_vault_audit IN EXCLUSIVE MODE`)
	require.NoError(t, err)
	return tx
}

// waitAudit waits until n key-read audit rows are queued or being written.
func waitAudit(t *testing.T, svc *vault.Service, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return vault.AuditWaiting(svc) == n }, 30*time.Second, time.Millisecond,
		"%d audit rows waiting, want %d", vault.AuditWaiting(svc), n)
}

type keyResult struct {
	key vault.Key
	err error
}

func keyAsync(svc *vault.Service, u uuid.UUID) <-chan keyResult {
	ch := make(chan keyResult, 1)
	go func() {
		k, err := svc.Key(context.Background(), u, vault.Client{UserAgent: "audit-test"})
		ch <- keyResult{k, err}
	}()
	return ch
}

func TestKeyWaitsForItsAuditRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	u := newUser(t, db)
	_, err := svc.Init(ctx, u, vault.Client{})
	require.NoError(t, err)

	tx := lockAudit(t, db)
	res := keyAsync(svc, u)
	waitAudit(t, svc, 1)
	select {
	case r := <-res:
		t.Fatalf("Key returned (%v) while its audit row could not be written", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, tx.Commit(ctx))
	r := <-res
	require.NoError(t, r.err)
	assert.Len(t, r.key.MasterKey, vault.MasterKeySize)
	assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit
		WHERE user_id = $1 AND action = 'key' AND http_status = 200 AND user_agent = 'audit-test'`, u),
		"the row is committed when Key returns")
}

// TestKeyWithoutItsAuditRowIsRefused: when the audit row cannot be
// written, Key answers the error and no key; the failure is logged and
// counted. If Key ignored the audit write's error, this test would get a
// key.
func TestKeyWithoutItsAuditRowIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	u := newUser(t, db)
	_, err := svc.Init(ctx, u, vault.Client{})
	require.NoError(t, err)
	// This test's own database: the grant goes for it alone.
	_, err = db.Owner.Exec(ctx, `REVOKE INSERT ON auth.encryption_vault_audit FROM mana_auth_runtime`)
	require.NoError(t, err)

	k, err := svc.Key(ctx, u, vault.Client{})
	require.Error(t, err)
	assert.Nil(t, k.MasterKey, "no key without its audit row")
	assert.Equal(t, 0, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit WHERE action = 'key'`))
	assert.Equal(t, 1.0, testutil.ToFloat64(svc.AuditFailures()), "the failure row could not be written either: counted")
}

// TestKeyReadsShareAuditCommits: key reads that arrive while a batch is
// being written are committed together in the next one.
func TestKeyReadsShareAuditCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	users := make([]uuid.UUID, 8)
	for i := range users {
		users[i] = newUser(t, db)
		_, err := svc.Init(ctx, users[i], vault.Client{})
		require.NoError(t, err)
	}
	tx := lockAudit(t, db)
	first := keyAsync(svc, users[0])
	waitAudit(t, svc, 1) // the writer holds the first row, waiting for the lock
	const n = 63
	results := make([]<-chan keyResult, n)
	for i := range results {
		results[i] = keyAsync(svc, users[i%len(users)])
	}
	waitAudit(t, svc, n+1)
	before := vault.AuditBatches(svc)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, (<-first).err)
	for _, ch := range results {
		r := <-ch
		require.NoError(t, r.err)
		assert.Len(t, r.key.MasterKey, vault.MasterKeySize)
	}
	assert.Equal(t, int64(1), vault.AuditBatches(svc)-before, "the 63 rows queued behind the first batch commit in one")
	assert.Equal(t, n+1, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit WHERE action = 'key'`))
	for _, u := range users {
		// Row-level security checked each row against its own user.
		assert.Equal(t, countAs(t, db.Runtime, u, `SELECT count(*) FROM auth.encryption_vault_audit WHERE action = 'key'`),
			ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit WHERE action = 'key' AND user_id = $1`, u))
	}
}

// TestOneBadAuditRowFailsOnlyItsRequest: a batch whose transaction fails
// on one row (its user deleted between the read and the audit) is written
// again row by row, so the other requests of the batch get their keys.
func TestOneBadAuditRowFailsOnlyItsRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	alice, bob, carol := newUser(t, db), newUser(t, db), newUser(t, db)
	for _, u := range []uuid.UUID{alice, bob, carol} {
		_, err := svc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
	}
	tx := lockAudit(t, db)
	first := keyAsync(svc, carol) // occupies the writer
	waitAudit(t, svc, 1)
	a, b := keyAsync(svc, alice), keyAsync(svc, bob) // queued: the next batch
	waitAudit(t, svc, 3)
	_, err := tx.Exec(ctx, `DELETE FROM auth.users WHERE id = $1`, bob)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	require.NoError(t, (<-first).err)
	ra, rb := <-a, <-b
	require.NoError(t, ra.err, "alice's row shared a transaction with bob's bad one")
	assert.Len(t, ra.key.MasterKey, vault.MasterKeySize)
	require.Error(t, rb.err)
	assert.Nil(t, rb.key.MasterKey)
	assert.Equal(t, 1, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit WHERE action = 'key' AND user_id = $1`, alice))
}

// TestKeyReadsInParallel: many readers of a few users, no lock: every
// read gets its key and leaves exactly one row.
func TestKeyReadsInParallel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbutil.DB(t)
	svc := newService(t, db.Runtime, nil)
	users := []uuid.UUID{newUser(t, db), newUser(t, db), newUser(t, db)}
	for _, u := range users {
		_, err := svc.Init(ctx, u, vault.Client{})
		require.NoError(t, err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Go(func() {
			<-start
			if _, err := svc.Key(ctx, users[i%3], vault.Client{}); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, 300, ownerCount(t, db, `SELECT count(*) FROM auth.encryption_vault_audit WHERE action = 'key'`))
	assert.LessOrEqual(t, vault.AuditBatches(svc), int64(300))
}
