package gdpr

import (
	"context"
	"net/netip"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Subject is the account an export or erasure is about.
type Subject struct {
	UserID uuid.UUID
	// Emails are the addresses attributed to the account (AddressBook):
	// the one it holds now first, then earlier ones that no other account
	// holds now. Canonical (trimmed, lower-case).
	Emails []string
}

// Exporter is implemented by every package that owns rows about a user,
// for its own tables.
type Exporter interface {
	// ExportData writes the package's sections about s to w, one per
	// table ("schema.table", even when it has no row), reading through
	// tx: the export's REPEATABLE READ, READ ONLY transaction, with
	// app.current_user_id set to s.UserID. Never a secret (token or key
	// hashes, wrapped keys, TOTP secrets).
	ExportData(ctx context.Context, tx pgx.Tx, s Subject, w *Writer) error
	// EraseData removes or anonymises the package's rows about s inside
	// tx, the transaction that deletes the account, before the user row is
	// deleted. Rows that reference auth.users with ON DELETE CASCADE go
	// with the user row and need nothing here.
	EraseData(ctx context.Context, tx pgx.Tx, s Subject) error
}

// UserReader answers the export's "user" object.
type UserReader interface {
	// ExportUser returns the user object of userID read through tx,
	// encoded as JSON by the export. Errors: NOT_FOUND when there is no
	// such account.
	ExportUser(ctx context.Context, tx pgx.Tx, userID uuid.UUID) (any, error)
}

// AddressBook names the email addresses attributed to an account.
type AddressBook interface {
	// Addresses returns the canonical addresses attributed to userID: the
	// one it holds now first, then the earlier ones that no other account
	// holds now. Empty when there is no such account.
	Addresses(ctx context.Context, tx pgx.Tx, userID uuid.UUID) ([]string, error)
}

// Client describes who asked, for the DATA_EXPORTED event. Zero values are
// stored as NULL.
type Client struct {
	IP        netip.Addr
	UserAgent string
}
