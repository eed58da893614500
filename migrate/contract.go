package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Drift is one difference between the schema the code expects and the live
// one.
type Drift struct {
	Schema string
	Table  string
	Column string // empty when the whole table is missing
}

func (d Drift) String() string {
	if d.Column == "" {
		return fmt.Sprintf("missing table %s.%s", d.Schema, d.Table)
	}
	return fmt.Sprintf("missing column %s.%s.%s", d.Schema, d.Table, d.Column)
}

// CheckContract compares the tables and columns the sources declare in their
// Contract with the live catalogue (pg_catalog, so it sees every column
// whatever the role's privileges, and runs no query of the services). It
// returns every difference, sorted; none means the code and the schema agree.
// This is how schema drift — a renamed or dropped column that would make
// every query of a feature fail — is found at start, before the first user.
func CheckContract(ctx context.Context, q Querier, sources ...Source) ([]Drift, error) {
	want := map[[2]string][]string{}
	var schemas []string
	for _, s := range sources {
		for _, t := range s.Contract {
			key := [2]string{t.Schema, t.Table}
			want[key] = append(want[key], t.Columns...)
			if !slices.Contains(schemas, t.Schema) {
				schemas = append(schemas, t.Schema)
			}
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `
		SELECT n.nspname, c.relname, a.attname
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_catalog.pg_attribute a
		       ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY($1)`, schemas)
	if err != nil {
		return nil, fmt.Errorf("migrate: read catalogue: %w", err)
	}
	have := map[[2]string]map[string]bool{}
	var schema, table string
	var column *string
	if _, err := pgx.ForEachRow(rows, []any{&schema, &table, &column}, func() error {
		key := [2]string{schema, table}
		if have[key] == nil {
			have[key] = map[string]bool{}
		}
		if column != nil {
			have[key][*column] = true
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("migrate: read catalogue: %w", err)
	}
	var drift []Drift
	for key, cols := range want {
		got, ok := have[key]
		if !ok {
			drift = append(drift, Drift{Schema: key[0], Table: key[1]})
			continue
		}
		for _, c := range cols {
			if !got[c] {
				drift = append(drift, Drift{Schema: key[0], Table: key[1], Column: c})
			}
		}
	}
	slices.SortFunc(drift, func(a, b Drift) int {
		return strings.Compare(a.String(), b.String())
	})
	return slices.Compact(drift), nil
}

// RoleAttributes describes the role a connection logs in as.
type RoleAttributes struct {
	Name        string
	Superuser   bool
	BypassRLS   bool
	OwnedTables int // tables in auth, mana_sync, mana_ai owned by the role
}

// Safe reports whether row-level security binds the role: not a superuser,
// no BYPASSRLS, owns no table.
func (a RoleAttributes) Safe() bool { return !a.Superuser && !a.BypassRLS && a.OwnedTables == 0 }

// CurrentRole reads the attributes of the role q is logged in as. The server
// uses it to refuse, in production, a runtime connection that could bypass
// row-level security.
func CurrentRole(ctx context.Context, q Querier) (RoleAttributes, error) {
	rows, err := q.Query(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls,
		       (SELECT count(*) FROM pg_catalog.pg_class c
		          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		         WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')
		           AND n.nspname IN ('auth', 'mana_sync', 'mana_ai'))::int
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`)
	if err != nil {
		return RoleAttributes{}, fmt.Errorf("migrate: read current role: %w", err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (RoleAttributes, error) {
		var a RoleAttributes
		err := row.Scan(&a.Name, &a.Superuser, &a.BypassRLS, &a.OwnedTables)
		return a, err
	})
	if err != nil {
		return RoleAttributes{}, fmt.Errorf("migrate: read current role: %w", err)
	}
	return a, nil
}
