package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Key reads are the vault's hot path, and each must leave an audit row.
// Writing that row in the read's own transaction makes every key read a
// commit — a WAL flush — of its own. The audit log instead commits the
// rows of concurrent key reads together (group commit): a row that
// arrives while a batch is being written goes into the next batch, so
// under load one commit carries many rows, and alone a row costs what it
// did before. append returns only when the transaction holding the row
// has committed (or failed), so Key never hands out a key whose audit row
// is not durable: if the row cannot be written, the caller gets the
// error and not the key.

// auditBatchMax bounds the rows of one transaction (two statements each).
const auditBatchMax = 256

// auditTimeout bounds the writing of one batch. A batch is shared by many
// requests, so it does not run under any one request's context.
const auditTimeout = 15 * time.Second

// auditLog appends audit rows with group commit. The writer goroutine
// exists only while rows are waiting.
type auditLog struct {
	pool *pgxpool.Pool

	mu       sync.Mutex
	pending  []*auditWait
	flushing bool

	inflight atomic.Int64 // rows taken by the writer, not yet reported
	batches  atomic.Int64 // transactions written
}

// auditWait is one row and the channel its outcome is sent on.
type auditWait struct {
	userID uuid.UUID
	row    audit
	at     time.Time
	done   chan error // buffered: the writer never waits for the caller
}

// append queues the row and waits until its transaction committed (nil)
// or failed, or ctx ends. On ctx's end the row may still be written.
func (l *auditLog) append(ctx context.Context, userID uuid.UUID, a audit, at time.Time) error {
	w := &auditWait{userID: userID, row: a, at: at, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, w)
	start := !l.flushing
	l.flushing = true
	l.mu.Unlock()
	if start {
		go l.flush()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("vault: waiting for the %s audit row: %w", a.action, ctx.Err())
	}
}

// flush writes batches until none is waiting.
func (l *auditLog) flush() {
	for {
		l.mu.Lock()
		n := min(len(l.pending), auditBatchMax)
		if n == 0 {
			l.flushing = false
			l.mu.Unlock()
			return
		}
		batch := l.pending[:n:n]
		l.pending = l.pending[n:]
		if len(l.pending) == 0 {
			l.pending = nil // let the backing array go
		}
		l.inflight.Add(int64(n))
		l.mu.Unlock()
		l.write(batch)
		l.inflight.Add(-int64(n))
	}
}

// write commits batch in one transaction and reports to every waiter. If
// the transaction fails, each row is tried again alone, so that one bad
// row (its user deleted meanwhile) fails only its own request.
func (l *auditLog) write(batch []*auditWait) {
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	err := l.insert(ctx, batch)
	if err == nil || len(batch) == 1 || !rowSpecific(err) {
		for _, w := range batch {
			w.done <- err
		}
		return
	}
	for _, w := range batch {
		w.done <- l.insert(ctx, []*auditWait{w})
	}
}

// rowSpecific reports an error that one row can cause for the whole
// transaction: an integrity or row-level security violation. A lost
// connection or a timeout fails every row alike, and is not retried.
func rowSpecific(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (strings.HasPrefix(pg.Code, "23") || pg.Code == "42501")
}

// insert writes rows in one round trip: a pipeline is one implicit
// transaction, and each row's insert follows a set_config of its own
// user, so the row-level security policy checks every row against the
// user it belongs to.
func (l *auditLog) insert(ctx context.Context, rows []*auditWait) error {
	b := &pgx.Batch{}
	for _, w := range rows {
		args, err := auditArgs(w.userID, w.row, w.at)
		if err != nil {
			return err
		}
		b.Queue("SELECT set_config('"+UserSetting+"', $1, true)", w.userID.String())
		b.Queue(insertAuditSQL, args...)
	}
	l.batches.Add(1)
	if err := l.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("vault: write %d audit rows: %w", len(rows), err)
	}
	return nil
}

const insertAuditSQL = `INSERT INTO auth.encryption_vault_audit
	(user_id, action, ip_address, user_agent, http_status, context, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

// auditArgs binds a row, absent values as NULL.
func auditArgs(userID uuid.UUID, a audit, at time.Time) ([]any, error) {
	var ip, ua, status, auditCtx any
	if a.client.IP.IsValid() {
		ip = a.client.IP
	}
	if a.client.UserAgent != "" {
		ua = a.client.UserAgent
	}
	if a.status != 0 {
		status = a.status
	}
	if a.context != nil {
		b, err := json.Marshal(a.context)
		if err != nil {
			return nil, fmt.Errorf("vault: audit %s context: %w", a.action, err)
		}
		auditCtx = string(b) // text: JSON in every pgx exec mode ([]byte would be bytea in exec mode)
	}
	return []any{userID, string(a.action), ip, ua, status, auditCtx, at}, nil
}

// readRow reads the caller's row in one round trip: set_config and the
// select in one pipeline, which is one implicit, read-only transaction
// (no commit to flush), so row-level security scopes the select and the
// setting ends with it. nil when there is no row.
func readRow(ctx context.Context, pool *pgxpool.Pool, userID uuid.UUID) (_ *row, err error) {
	if userID == uuid.Nil {
		return nil, ErrNoUser
	}
	b := &pgx.Batch{}
	b.Queue("SELECT set_config('"+UserSetting+"', $1, true)", userID.String())
	b.Queue(selectRow, userID)
	br := pool.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("vault: read vault: %w", cerr)
		}
	}()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("vault: set %s: %w", UserSetting, err)
	}
	r, err := scanRow(br.QueryRow())
	if errors.Is(err, errNoRow) {
		return nil, nil
	}
	return r, err
}
