// Package localpg finds or starts a PostgreSQL server for tests and for the
// reference server's zero-configuration development mode.
//
// Find returns a Server: a superuser URL to the maintenance database
// ("postgres") and how it was found. Tests create a database per test
// through it; the development server migrates with it and derives its
// runtime URL with URLFor.
//
//	srv, err := localpg.Find(ctx, localpg.Options{EnvVar: "TEST_DATABASE_URL"})
//	if err != nil {
//		return err // one line naming what to install or set, when nothing was found
//	}
//	defer srv.Close()
//
// # Search order
//
//  1. Options.EnvVar (e.g. TEST_DATABASE_URL), when set and non-empty: its
//     URL is used as is and must answer within 5 s, otherwise Find fails
//     with an error naming the variable and tries nothing else. Whether
//     that login may create roles and databases is up to whoever set it.
//  2. A local server: 127.0.0.1:5432, then the Unix socket in
//     /var/run/postgresql or /tmp, as user "postgres" and then as the OS
//     user, each probed for 2 s; only a superuser login is taken (SELECT
//     rolsuper …), since migrations create roles and databases. Skipped
//     with Options.SkipLocal.
//  3. A cluster from local binaries: initdb and postgres from PATH,
//     /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, /usr/local/pgsql/bin
//     or Homebrew, newest version first. initdb -A trust -U postgres
//     --encoding=UTF8 --locale=C, then postgres is started directly (no
//     pg_ctl) on a free port of 127.0.0.1 and polled until a superuser
//     login works (30 s). Its output goes to postgres.log in the cluster
//     directory; a failed start returns the log's tail. Skipped with
//     Options.NoCluster. See "Clusters" below.
//  4. Options.Container, when set and its engine answers. Package
//     localpg/container provides a postgres:15-alpine container through
//     testcontainers-go, checked within 2.5 s (without an engine this costs
//     no more than that and never hangs or panics); Close terminates it.
//     It is a package of its own so that binaries which do not import it
//     (the reference server) carry no Docker client.
//
// When no step finds anything, the error wraps ErrNotFound and is one line
// listing why each step came up empty and what to install or set. When a
// step finds something but cannot use it (initdb or postgres fails, a
// container does not start) its error is returned instead: a persistent
// cluster's failure at once, a throwaway cluster's after the container step
// also came up empty.
//
// Every URL of a local server or cluster carries sslmode=disable.
//
// # Clusters
//
// Options.ClusterDir == "" starts a throwaway cluster in
// os.TempDir()/mana-auth-pg-<pid>-<random> with fsync, full_page_writes and
// synchronous_commit off. It belongs to the calling process:
//
//   - Close stops it (SIGINT, PostgreSQL's fast shutdown, and a wait) and
//     removes its directory.
//   - Without Close, on Linux, it still dies with the process: postgres is
//     started with a parent death signal (SIGINT) from a goroutine locked
//     to its OS thread that stays until postgres has exited, because the
//     signal follows the thread that forked, not the process
//     (golang/go#27505). No TestMain is needed.
//   - Its directory is then left behind; every later throwaway start
//     removes those whose creating pid is no longer alive (stopping a
//     postgres still running in one, which only happens where no parent
//     death signal exists).
//
// Options.ClusterDir != "" is a persistent cluster, as the development
// server keeps in <state dir>/postgres:
//
//	data/          the cluster, created by initdb only when data/PG_VERSION is missing
//	port           its port, reused on the next start so its URL stays the same
//	postgres.log   initdb's and postgres' output
//	run/           its Unix socket (when reachable, see below)
//	lock           flock(2)ed while a Find inspects, creates or starts it
//
// Find connects to it when data/postmaster.pid names a live postgres, and
// otherwise starts it with the binaries of the version that created it
// (fsync stays on). The server is started detached, in its own session and
// without a parent death signal, so it KEEPS RUNNING after the process
// that started it exits and a restarted development server finds it
// running; Close does not stop it. StopCluster(dir) stops it (as does
// kill -INT on the pid in data/postmaster.pid). Several processes may call
// Find on one ClusterDir at once; the lock makes them start it once.
//
// # Running as root
//
// initdb and postgres refuse to run as root. As root, Find runs them as the
// owner of an existing data directory, else as "postgres" when that user
// exists, else as "nobody", with only that user's primary group, and gives
// the data and socket directories to that user (mode 0700); the throwaway
// directory (and a ClusterDir that Find creates) gets mode 0711 so the user
// can reach them. When a directory above the data directory is not
// traversable by that user (a cluster under /root, or under t.TempDir(),
// whose parent is 0700), the data directory is handed to initdb and
// postgres as an open descriptor, fd 3, named /proc/self/fd/3 (Linux; the
// kernel resolves it without checking the directories above), and the
// server gets no Unix socket; clients use the TCP URL anyway. ps then shows
// "-D /proc/self/fd/3"; pg_ctl cannot address such a cluster, StopCluster
// can. Other systems return an error asking for a reachable directory.
package localpg
