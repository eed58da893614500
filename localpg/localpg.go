package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sources reported in Server.Source.
const (
	SourceEnv       = "env"       // the URL in Options.EnvVar
	SourceLocal     = "local"     // a server already running on this machine
	SourceCluster   = "cluster"   // a cluster run from local binaries (throwaway or persistent)
	SourceContainer = "container" // Options.Container
)

// ErrNotFound is returned (wrapped, as a one-line message that says what to
// install or set) when no step of the search found or could start a server.
var ErrNotFound = errors.New("localpg: no PostgreSQL found")

// Timeouts of the search steps.
const (
	envTimeout   = 5 * time.Second  // the URL named by Options.EnvVar must answer within this
	probeTimeout = 2 * time.Second  // per local candidate (127.0.0.1:5432, sockets)
	readyTimeout = 30 * time.Second // a started cluster must accept connections within this
	stopTimeout  = 30 * time.Second // a stopped cluster must be gone within this
)

// Options select where Find may look. The zero value probes the local
// server, then starts a throwaway cluster.
type Options struct {
	// EnvVar names an environment variable read first ("" = none). When it
	// is set and non-empty its URL is used as is and must answer; Find
	// then never falls through to the other steps.
	EnvVar string
	// SkipLocal skips probing 127.0.0.1:5432 and the local Unix sockets.
	SkipLocal bool
	// ClusterDir is the directory of a persistent cluster, created on the
	// first call and reused afterwards; "" starts a throwaway cluster in a
	// temporary directory instead.
	ClusterDir string
	// NoCluster skips starting a cluster from local binaries.
	NoCluster bool
	// Container, when set, is the last step: PostgreSQL in a container.
	// Package localpg/container provides one on testcontainers-go. Nil:
	// no container step — localpg itself links no container client, so a
	// binary that does not import localpg/container carries none.
	Container ContainerStep
	// Logger receives progress lines; nil: slog.Default().
	Logger *slog.Logger
}

// A ContainerStep starts PostgreSQL in a container, as Find's last step.
type ContainerStep interface {
	// Available reports, within a few seconds at most, whether a container
	// engine answers; its error says why not. It must not hang or panic
	// on an engine that is absent or silent.
	Available(ctx context.Context) error
	// Start starts a PostgreSQL server and waits until it accepts
	// connections. It returns a superuser URL and the function that stops
	// and removes the server (Server.Close calls it once).
	Start(ctx context.Context, log *slog.Logger) (url string, stop func() error, err error)
}

// Server is a PostgreSQL server reachable with a superuser connection string.
type Server struct {
	// URL is a superuser URL to the maintenance database, e.g.
	// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
	URL string
	// Source tells how the server was found: SourceEnv, SourceLocal,
	// SourceCluster or SourceContainer.
	Source string
	// Dir is the cluster directory for SourceCluster (the throwaway
	// temporary directory, or Options.ClusterDir); "" otherwise.
	Dir string

	stop      func() error
	closeOnce sync.Once
	closeErr  error
}

// Close stops what Find started: a throwaway cluster is shut down and its
// directory removed, a container is terminated. It does nothing for
// SourceEnv, SourceLocal and a persistent cluster (which keeps running on
// purpose; see StopCluster). Close is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.closeErr = s.stop()
		}
	})
	return s.closeErr
}

// URLFor returns s.URL with another database, user and password (password
// "" = none) and the same host, port and parameters. It works only when
// s.URL is in URL form (postgres://…), which it always is except when
// Options.EnvVar named a keyword/value connection string.
func (s *Server) URLFor(database, user, password string) (string, error) {
	if database == "" || user == "" {
		return "", errors.New("localpg: URLFor needs a database and a user")
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("localpg: server URL is not a URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("localpg: server URL has scheme %q, want postgres:// (keyword/value strings are not supported)", u.Scheme)
	}
	if password == "" {
		u.User = url.User(user)
	} else {
		u.User = url.UserPassword(user, password)
	}
	u.Path, u.RawPath = "/"+database, ""
	// Query parameters override the userinfo and path in pgx: drop them.
	q := u.Query()
	if q.Has("user") || q.Has("password") || q.Has("dbname") {
		q.Del("user")
		q.Del("password")
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// Find returns a PostgreSQL server, trying in this order:
//
//  1. the URL in opts.EnvVar when that variable is set and non-empty; it
//     must answer, otherwise Find fails with an error naming the variable;
//  2. a server answering as a superuser on 127.0.0.1:5432 or the Unix
//     socket in /var/run/postgresql or /tmp, as user "postgres", then as
//     the OS user;
//  3. a cluster from local binaries (initdb and postgres found in PATH,
//     /usr/lib/postgresql/*/bin, …, newest version first): persistent in
//     opts.ClusterDir, or throwaway when it is "";
//  4. opts.Container, when set and its engine answers (package
//     localpg/container: a postgres:15-alpine container through
//     testcontainers-go).
//
// When nothing is found the error wraps ErrNotFound and is one line that
// says what to install or set. When a step finds something but fails to
// use it (initdb fails, a container does not start) that error is returned
// instead, with the server log's tail for a cluster.
func Find(ctx context.Context, opts Options) (*Server, error) {
	return find(ctx, opts, defaultBinGlobs)
}

func find(ctx context.Context, opts Options, binGlobs []string) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	if opts.EnvVar != "" {
		if v := os.Getenv(opts.EnvVar); v != "" {
			if err := probe(ctx, v, envTimeout, false); err != nil {
				return nil, fmt.Errorf("localpg: %s is set but PostgreSQL does not answer there: %w", opts.EnvVar, err)
			}
			log.Info("localpg: using the server in " + opts.EnvVar)
			return &Server{URL: v, Source: SourceEnv}, nil
		}
	}

	var reasons []string
	if !opts.SkipLocal {
		if s := findLocal(ctx, log); s != nil {
			return s, nil
		}
		reasons = append(reasons, "local: no superuser login on 127.0.0.1:5432 or a local socket")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// failed is a step that found something but could not use it; it is
	// reported unless a later step succeeds.
	var failed error
	if !opts.NoCluster {
		s, err := startCluster(ctx, opts.ClusterDir, log, binGlobs)
		switch {
		case err == nil:
			return s, nil
		case errors.Is(err, errNoBinaries):
			reasons = append(reasons, "cluster: "+oneLine(err))
		default:
			if ctx.Err() != nil {
				return nil, err
			}
			if opts.ClusterDir != "" {
				// A persistent cluster that exists but does not start is
				// not replaced by a container holding other data.
				return nil, err
			}
			log.Warn("localpg: throwaway cluster failed; trying a container", "err", err)
			failed = err
		}
	}

	if opts.Container != nil {
		if err := opts.Container.Available(ctx); err != nil {
			reasons = append(reasons, "container: "+oneLine(err))
		} else {
			connURL, stop, err := opts.Container.Start(ctx, log)
			if err == nil {
				return &Server{URL: connURL, Source: SourceContainer, stop: stop}, nil
			}
			return nil, errors.Join(failed, err)
		}
	}
	if failed != nil {
		return nil, failed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	envVar := opts.EnvVar
	if envVar == "" {
		envVar = "DATABASE_URL"
	}
	why := ""
	if len(reasons) > 0 {
		why = " (" + strings.Join(reasons, "; ") + ")"
	}
	return nil, fmt.Errorf("%w%s: install the PostgreSQL server package (e.g. apt-get install postgresql, dnf install postgresql-server, brew install postgresql) or set %s to a superuser URL", ErrNotFound, why, envVar)
}

// findLocal probes 127.0.0.1:5432, then the Unix sockets, as "postgres" and
// then as the OS user, and returns the first superuser login.
func findLocal(ctx context.Context, log *slog.Logger) *Server {
	users := []string{"postgres"}
	if u, err := user.Current(); err != nil {
		log.Debug("localpg: no OS user name", "err", err)
	} else if u.Username != "" && u.Username != "postgres" {
		users = append(users, u.Username)
	}

	var candidates []string
	for _, name := range users {
		candidates = append(candidates, (&url.URL{
			Scheme: "postgres", User: url.User(name), Host: "127.0.0.1:5432",
			Path: "/postgres", RawQuery: "sslmode=disable",
		}).String())
	}
	seen := map[string]bool{}
	for _, dir := range []string{"/var/run/postgresql", "/tmp"} {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL.5432")); err != nil {
			continue
		}
		for _, name := range users {
			candidates = append(candidates, (&url.URL{
				Scheme: "postgres", User: url.User(name), Path: "/postgres",
				RawQuery: url.Values{"host": {dir}, "sslmode": {"disable"}}.Encode(),
			}).String())
		}
	}

	for _, c := range candidates {
		err := probe(ctx, c, probeTimeout, true)
		if err == nil {
			log.Info("localpg: using the local server", "url", c)
			return &Server{URL: c, Source: SourceLocal}
		}
		log.Debug("localpg: local candidate does not fit", "url", c, "err", err)
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

var errNotSuperuser = errors.New("localpg: the login is not a superuser")

// probe connects within timeout and runs one query; with needSuper it
// fails unless the login is a superuser.
func probe(ctx context.Context, connString string, timeout time.Duration, needSuper bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	var super bool
	err = conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super)
	if cerr := conn.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if needSuper && !super {
		return errNotSuperuser
	}
	return nil
}

// oneLine folds a multi-line error message into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// freePort returns a port nothing listens on at the moment.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	return port, nil
}
