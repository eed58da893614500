//go:build unix

package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A persistent cluster directory holds:
//
//	data/          the cluster (PGDATA), owned by the user postgres runs as
//	run/           its Unix socket, when reachable by that user
//	port           the port it listens on, reused on the next start
//	postgres.log   initdb's and postgres' output
//	lock           flock(2)ed while a Find checks, creates or starts it
const (
	dataDirName  = "data"
	sockDirName  = "run"
	portFileName = "port"
	logFileName  = "postgres.log"
	lockFileName = "lock"
)

// startPersistent reuses the cluster in dir: it connects to it when it
// runs, starts it when it does not, and creates it first when dir holds
// none. A server it starts runs detached (its own session, no parent death
// signal) and keeps running after this process exits; StopCluster stops it.
func startPersistent(ctx context.Context, dir string, log *slog.Logger, globs []string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	// As root, others may traverse (not list) dir so that the user postgres
	// runs as reaches data/ by path where the directories above allow it.
	mode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		mode = 0o711
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	unlock, err := lockDir(ctx, filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, err
	}
	defer unlock()

	data := filepath.Join(dir, dataDirName)
	logPath := filepath.Join(dir, logFileName)
	if pid, port, ok := liveServer(data); ok {
		url := clusterURL(port)
		if err := waitReady(ctx, url, data, nil, readyTimeout); err != nil {
			return nil, fmt.Errorf("localpg: the cluster in %s runs (pid %d) but does not answer on port %d: %w; see %s, or stop it with kill -INT %d",
				dir, pid, port, err, logPath, pid)
		}
		log.Info("localpg: using the running cluster", "dir", dir, "url", url)
		return &Server{URL: url, Source: SourceCluster, Dir: dir}, nil
	}

	bins, err := findBinaries(ctx, globs)
	if err != nil {
		return nil, err
	}
	b := bins[0]
	version, initialized, err := readPGVersion(data)
	if err != nil {
		return nil, err
	}
	if initialized {
		found := false
		for _, c := range bins {
			if c.major == version {
				b, found = c, true
				break
			}
		}
		if !found {
			var have []string
			for _, c := range bins {
				have = append(have, c.text)
			}
			return nil, fmt.Errorf("localpg: the cluster in %s was created by PostgreSQL %s, but only %s is installed; install PostgreSQL %s or move %s away",
				dir, version, strings.Join(have, ", "), version, data)
		}
	} else if _, err := os.Stat(data); err == nil {
		// Left over by an initdb that did not finish: nothing to keep.
		log.Warn("localpg: removing an incomplete cluster", "dir", data)
		if err := os.RemoveAll(data); err != nil {
			return nil, fmt.Errorf("localpg: remove incomplete cluster: %w", err)
		}
	}

	as, err := pickUser(data)
	if err != nil {
		return nil, err
	}
	if err := mkdirOwned(data, as); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, sockDirName)
	if err := mkdirOwned(sock, as); err != nil {
		return nil, err
	}
	if !reachable(sock, as) {
		sock = ""
	}
	ref, err := openDataRef(data, as)
	if err != nil {
		return nil, err
	}
	defer ref.close()

	if !initialized {
		log.Info("localpg: creating a persistent cluster", "dir", dir, "version", b.text, "as", as.String())
		if err := initdb(ctx, b, ref, as, true, logPath); err != nil {
			return nil, err
		}
	}
	log.Info("localpg: starting the persistent cluster", "dir", dir, "version", b.text, "as", as.String())
	port, _, err := startPostgres(ctx, startParams{
		bins: b, dataDir: data, ref: ref, sockDir: sock, as: as, logPath: logPath, port: readPort(dir, log),
	}, log)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, portFileName), []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		// The server runs; only the next start's choice of port is affected.
		log.Warn("localpg: cannot record the cluster's port", "dir", dir, "err", err)
	}
	url := clusterURL(port)
	log.Info("localpg: persistent cluster ready; it keeps running after this process exits", "url", url, "dir", dir)
	return &Server{URL: url, Source: SourceCluster, Dir: dir}, nil
}

// StopCluster stops the persistent cluster in dir (Options.ClusterDir) if
// it runs, with a fast shutdown, and waits until it has stopped. Data is
// kept; the next Find with the same ClusterDir starts it again.
func StopCluster(dir string) error {
	data := filepath.Join(dir, dataDirName)
	pid, _, ok := liveServer(data)
	if !ok {
		return nil
	}
	return stopPID(data, pid, stopTimeout)
}

// readPGVersion reports the major version in data/PG_VERSION, if any.
func readPGVersion(data string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(data, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("localpg: %w", err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// readPort returns the port recorded in dir, 0 when none is.
func readPort(dir string, log *slog.Logger) int {
	b, err := os.ReadFile(filepath.Join(dir, portFileName))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		log.Warn("localpg: cannot read the cluster's port; choosing another", "dir", dir, "err", err)
		return 0
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || port <= 0 || port > 65535 {
		log.Warn("localpg: ignoring a malformed port file", "dir", dir, "content", string(b))
		return 0
	}
	return port
}

// lockDir takes an exclusive flock on path, waiting while another process
// (or another Find in this one) holds it.
func lockDir(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Closing the file releases the lock.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close() // the flock error is the one to report
			return nil, fmt.Errorf("localpg: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("localpg: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
