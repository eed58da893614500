package gdpr

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query; a pgx.Tx is one.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Writer streams the "sections" object of an export: each section is a
// JSON array written row by row as the rows arrive, never held in memory.
// It is not safe for concurrent use.
type Writer struct {
	bw       *bufio.Writer
	seen     map[string]bool
	sections []string
	rows     int64
}

// sectionName is "schema.table" in lower-case SQL identifiers.
var sectionName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$`)

// ErrSection reports a section name that is not "schema.table" or was
// written twice (a wiring bug: two exporters claiming one table).
var ErrSection = errors.New("gdpr: bad or repeated section name")

// NewWriter returns a Writer of sections to w, buffered (32 KiB): call
// Flush when done. Service.Export makes its own; NewWriter serves a host
// or a test that composes sections itself. The sections are written as
// the members of a JSON object, without its braces.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 32<<10), seen: map[string]bool{}}
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("gdpr: write: %w", err)
	}
	return nil
}

// Query writes the section name ("schema.table") with one element per row
// of query, which selects the columns to export — never a secret column.
// Each row is written as PostgreSQL's row_to_json of the selected columns:
// an object keyed by column name (or alias), timestamps in RFC 3339 (the
// export's time zone is UTC), uuids and inet addresses as strings, arrays
// as arrays, jsonb as JSON, bytea as a "\\x…" hex string. query is wrapped
// as a subquery, so its ORDER BY decides the order of the rows.
func (w *Writer) Query(ctx context.Context, q Querier, name, query string, args ...any) error {
	if !sectionName.MatchString(name) || w.seen[name] {
		return fmt.Errorf("%w: %q", ErrSection, name)
	}
	rows, err := q.Query(ctx, "SELECT row_to_json(r)::text FROM ("+query+") r", args...)
	if err != nil {
		return fmt.Errorf("gdpr: export %s: %w", name, err)
	}
	defer rows.Close()
	if err := w.open(name); err != nil {
		return err
	}
	first := true
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 1 || raw[0] == nil {
			return fmt.Errorf("gdpr: export %s: a row without its JSON", name)
		}
		if !first {
			if err := w.bw.WriteByte(','); err != nil {
				return fmt.Errorf("gdpr: write %s: %w", name, err)
			}
		}
		first = false
		if _, err := w.bw.Write(raw[0]); err != nil {
			return fmt.Errorf("gdpr: write %s: %w", name, err)
		}
		w.rows++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gdpr: export %s: %w", name, err)
	}
	if err := w.bw.WriteByte(']'); err != nil {
		return fmt.Errorf("gdpr: write %s: %w", name, err)
	}
	return nil
}

// open starts the array of section name.
func (w *Writer) open(name string) error {
	w.seen[name] = true
	sep := ","
	if len(w.sections) == 0 {
		sep = ""
	}
	w.sections = append(w.sections, name)
	key, err := json.Marshal(name)
	if err != nil {
		return fmt.Errorf("gdpr: section %q: %w", name, err)
	}
	if _, err := fmt.Fprintf(w.bw, "%s%s:[", sep, key); err != nil {
		return fmt.Errorf("gdpr: write %s: %w", name, err)
	}
	return nil
}

// Sections lists the sections written so far, in order.
func (w *Writer) Sections() []string { return append([]string(nil), w.sections...) }

// Rows is the number of rows written so far, over all sections.
func (w *Writer) Rows() int64 { return w.rows }
