package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mana-how/mana-auth/migrate"
)

// BouncerOptions configure PgBouncer; each zero value is the default.
type BouncerOptions struct {
	// PoolSize is default_pool_size, the server connections per database
	// and user; default 4. Keep it below the clients' pool sizes so that
	// clients share server connections from one transaction to the next,
	// as they do in production.
	PoolSize int
	// RoundRobin sets server_round_robin: idle server connections are
	// handed out in turn instead of the most recently used first, so one
	// client's consecutive transactions land on different connections.
	RoundRobin bool
	// Owner admits the owner of the tables too (the user of
	// Database.OwnerURL); Bouncer.OwnerURL is set then.
	Owner bool
}

// Bouncer is a PgBouncer in transaction mode in front of one test
// database: the pooler operators run between their instances and
// PostgreSQL. A client's session lasts one transaction: outside a
// transaction, consecutive statements may run on different server
// connections, and another client's statements on the same one.
type Bouncer struct {
	Addr string // 127.0.0.1:port
	// RuntimeURL logs in as migrate.RuntimeRole through the bouncer.
	RuntimeURL string
	// OwnerURL logs in as the owner through the bouncer; "" unless
	// BouncerOptions.Owner.
	OwnerURL string
	Version  string // e.g. "1.18.0"
	Proc     *Process
	database string
	statsURL string
}

// bouncerOnlyPassword is what a client gives the bouncer for a role that
// logs in to PostgreSQL without a password (trust authentication): the
// bouncer itself always asks for one.
const bouncerOnlyPassword = "mana-auth-test-bouncer-password-0001" // #nosec G101 -- the test PgBouncer's own login, on loopback only

// PgBouncer starts a pgbouncer process (the Debian package pgbouncer,
// 1.18 or later) in pool_mode=transaction on a free port of 127.0.0.1, in
// front of db, and stops it when the test ends. It admits the runtime
// role with its password (scram-sha-256; the server-side password is
// RuntimeTestPassword when the server asks for one, and none under trust),
// which is also its stats user (Bouncer.Show). Prepared statements are not
// carried across server connections (PgBouncer before 1.21 cannot;
// max_prepared_statements = 0 on later versions), the strictest setting.
//
// Without the pgbouncer binary the test fails saying how to install it;
// under -short it is skipped instead.
func PgBouncer(t testing.TB, db *Database, opts BouncerOptions) *Bouncer {
	t.Helper()
	e := setup(t)
	bin, err := pgbouncerBinary()
	if err != nil {
		if testing.Short() {
			t.Skipf("-short and %v", err)
		}
		t.Fatal(err)
	}
	version, err := pgbouncerVersion(bin)
	if err != nil {
		t.Fatal(err)
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 4
	}
	srvCfg, err := pgx.ParseConfig(e.server.URL)
	if err != nil {
		t.Fatalf("testutil: parse server URL: %v", err)
	}

	dir := t.TempDir()
	runtimePass := e.runtimePass
	if runtimePass == "" {
		runtimePass = bouncerOnlyPassword
	}
	users := []string{userlistLine(migrate.RuntimeRole, runtimePass)}
	var ownerUser, ownerPass string
	if opts.Owner {
		ownerCfg, err := pgx.ParseConfig(db.OwnerURL)
		if err != nil {
			t.Fatalf("testutil: parse owner URL: %v", err)
		}
		ownerUser, ownerPass = ownerCfg.User, ownerCfg.Password
		if ownerPass == "" {
			ownerPass = bouncerOnlyPassword
		}
		users = append(users, userlistLine(ownerUser, ownerPass))
	}
	userlist := filepath.Join(dir, "userlist.txt")
	if err := os.WriteFile(userlist, []byte(strings.Join(users, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("testutil: pgbouncer userlist: %v", err)
	}

	var args []string
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root; -u drops to another user after
		// it has read its files.
		name, err := unprivilegedUser()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "-u", name)
	}
	b := &Bouncer{Version: version, database: db.Name}
	// A free port is picked by binding and releasing it; another process
	// may take it meanwhile, so a failed start is retried on a new one.
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testutil: pgbouncer port: %v", err)
		}
		ini := filepath.Join(dir, "pgbouncer.ini")
		if err := os.WriteFile(ini, []byte(bouncerINI(db.Name, srvCfg, port, userlist, opts, version)), 0o600); err != nil {
			t.Fatalf("testutil: pgbouncer ini: %v", err)
		}
		proc := StartProcess(t, exec.Command(bin, append(args, ini)...)) // #nosec G204 -- the pgbouncer binary found on this machine, with the test's own ini file
		if waitBouncer(proc, 10*time.Second) {
			b.Proc, b.Addr = proc, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			break
		}
		if try == 3 || !strings.Contains(proc.Output(), "in use") {
			t.Fatalf("testutil: pgbouncer did not start; output:\n%s", proc.Output())
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgbouncer output:\n%s", b.Proc.Output())
		}
	})
	b.RuntimeURL = bouncerURL(b.Addr, db.Name, migrate.RuntimeRole, runtimePass)
	b.statsURL = bouncerURL(b.Addr, "pgbouncer", migrate.RuntimeRole, runtimePass)
	if opts.Owner {
		b.OwnerURL = bouncerURL(b.Addr, db.Name, ownerUser, ownerPass)
	}
	return b
}

func bouncerINI(database string, srv *pgx.ConnConfig, port int, userlist string, opts BouncerOptions, version string) string {
	rr := 0
	if opts.RoundRobin {
		rr = 1
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "[databases]\n%s = host=%s port=%d dbname=%s\n\n", database, srv.Host, srv.Port, database)
	fmt.Fprintf(&sb, `[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
server_round_robin = %d
stats_users = %s
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
`, port, userlist, opts.PoolSize, rr, migrate.RuntimeRole)
	if versionAtLeast(version, 1, 21) {
		sb.WriteString("max_prepared_statements = 0\n")
	}
	return sb.String()
}

func bouncerURL(addr, database, user, password string) string {
	u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + database, User: url.UserPassword(user, password),
		RawQuery: "sslmode=disable"}
	return u.String()
}

// userlistLine is one line of PgBouncer's auth_file: "user" "password",
// double quotes doubled.
func userlistLine(user, password string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(user) + " " + q(password)
}

func waitBouncer(p *Process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), "process up") {
			return true
		}
		if p.Exited() {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func pgbouncerBinary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("testutil: pgbouncer not found on PATH or in /usr/sbin: install it (apt-get install pgbouncer; 1.18 or later)")
}

var versionRE = regexp.MustCompile(`PgBouncer (\d+)\.(\d+)(\.\d+)?`)

func pgbouncerVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testutil: %s --version: %v: %s", bin, err, out)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("testutil: %s --version: no version in %q", bin, out)
	}
	v := m[1] + "." + m[2] + m[3]
	if !versionAtLeast(v, 1, 18) {
		return "", fmt.Errorf("testutil: pgbouncer %s is too old: 1.18 or later is needed", v)
	}
	return v, nil
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// unprivilegedUser is who PgBouncer runs as when the tests run as root:
// postgres when that user exists, else nobody.
func unprivilegedUser() (string, error) {
	for _, name := range []string{"postgres", "nobody"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", errors.New("testutil: running as root, and neither user postgres nor nobody exists to run pgbouncer as (it refuses to run as root)")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// Show runs SHOW what (POOLS, STATS, SERVERS, …) on the bouncer's admin
// console and returns the rows of this test's database as column → value.
func (b *Bouncer) Show(t testing.TB, what string) []map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(b.statsURL)
	if err != nil {
		t.Fatalf("testutil: pgbouncer console URL: %v", err)
	}
	// The console speaks only the simple query protocol.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testutil: pgbouncer console: %v", err)
	}
	defer func() {
		if err := conn.Close(context.WithoutCancel(ctx)); err != nil {
			t.Logf("testutil: close pgbouncer console: %v", err)
		}
	}()
	rows, err := conn.Query(ctx, "SHOW "+what)
	if err != nil {
		t.Fatalf("testutil: pgbouncer SHOW %s: %v", what, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		// The simple protocol answers in text: the raw values are the text.
		vals := rows.RawValues()
		row := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = string(vals[i])
		}
		if db, ok := row["database"]; ok && db != b.database {
			continue
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("testutil: pgbouncer SHOW %s: %v", what, err)
	}
	return out
}
