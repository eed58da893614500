//go:build unix

package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// errNoBinaries: no initdb/postgres pair was found (the cluster step is
// unavailable, which is not a failure).
var errNoBinaries = errors.New("no initdb and postgres binaries in PATH or /usr/lib/postgresql/*/bin")

// defaultBinGlobs are searched after PATH for initdb and postgres.
var defaultBinGlobs = []string{
	"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
	"/usr/pgsql-*/bin",                  // PGDG RPMs
	"/usr/local/pgsql/bin",              // source builds
	"/opt/homebrew/opt/postgresql*/bin", // Homebrew (Apple silicon)
	"/usr/local/opt/postgresql*/bin",    // Homebrew (Intel)
}

// throwawayPrefix names throwaway cluster directories in os.TempDir():
// mana-auth-pg-<pid of the creating process>-<random>.
const throwawayPrefix = "mana-auth-pg-"

// binaries is one PostgreSQL installation.
type binaries struct {
	dir     string
	version []int  // e.g. [15 20]
	major   string // as in PG_VERSION: "15", "9.6"
	text    string // e.g. "15.20"
}

func (b binaries) initdb() string   { return filepath.Join(b.dir, "initdb") }
func (b binaries) postgres() string { return filepath.Join(b.dir, "postgres") }

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// findBinaries lists the installations with both initdb and postgres,
// newest version first (PATH before the globs among equal versions).
func findBinaries(ctx context.Context, globs []string) ([]binaries, error) {
	var dirs []string
	for _, name := range []string{"initdb", "postgres"} {
		if p, err := exec.LookPath(name); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				dirs = append(dirs, filepath.Dir(real))
			}
		}
	}
	for _, g := range globs {
		m, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("localpg: bad search pattern %q: %w", g, err)
		}
		dirs = append(dirs, m...)
	}

	var out []binaries
	seen := map[string]bool{}
	for _, d := range dirs {
		real, err := filepath.EvalSymlinks(d)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if !isExecutable(filepath.Join(real, "initdb")) || !isExecutable(filepath.Join(real, "postgres")) {
			continue
		}
		b, err := versionOf(ctx, real)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errNoBinaries
	}
	slices.SortStableFunc(out, func(a, b binaries) int { return slices.Compare(b.version, a.version) })
	return out, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// versionOf runs "postgres -V" (allowed as root) in dir.
func versionOf(ctx context.Context, dir string) (binaries, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "-V").CombinedOutput()
	if err != nil {
		return binaries{}, fmt.Errorf("localpg: %s/postgres -V: %w: %s", dir, err, bytes.TrimSpace(out))
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return binaries{}, fmt.Errorf("localpg: %s/postgres -V: unrecognised output %q", dir, bytes.TrimSpace(out))
	}
	b := binaries{dir: dir}
	maj, _ := strconv.Atoi(string(m[1])) // the pattern guarantees digits
	b.version = append(b.version, maj)
	b.major, b.text = string(m[1]), string(m[1])
	if len(m[2]) > 0 {
		minor, _ := strconv.Atoi(string(m[2]))
		b.version = append(b.version, minor)
		b.text += "." + string(m[2])
		if maj < 10 {
			b.major += "." + string(m[2])
		}
	}
	return b, nil
}

// runAs is the OS user the cluster runs as; zero value = ourselves.
type runAs struct {
	set      bool
	uid, gid uint32
	name     string
}

func (r runAs) String() string {
	if !r.set {
		return "the current user"
	}
	return "user " + r.name
}

func (r runAs) apply(attr *syscall.SysProcAttr) {
	if r.set {
		attr.Credential = &syscall.Credential{Uid: r.uid, Gid: r.gid}
	}
}

// pickUser chooses who runs initdb and postgres. Both refuse to run as
// root, so as root it is the owner of an existing data directory, else
// "postgres" when that user exists, else "nobody".
func pickUser(dataDir string) (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{}, nil
	}
	if fi, err := os.Stat(dataDir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			name := strconv.FormatUint(uint64(st.Uid), 10)
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			return runAs{set: true, uid: st.Uid, gid: st.Gid, name: name}, nil
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return runAs{set: true, uid: uint32(uid), gid: uint32(gid), name: name}, nil
	}
	return runAs{}, errors.New("localpg: running as root, and neither user postgres nor nobody exists to run PostgreSQL as (it refuses to run as root)")
}

// reachable reports whether r can traverse every directory from dir up to
// the root. The child runs with r's uid and primary gid only (no
// supplementary groups), so only those are checked.
func reachable(dir string, r runAs) bool {
	if !r.set {
		return true
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		perm := fi.Mode().Perm()
		var x bool
		switch {
		case st.Uid == r.uid:
			x = perm&0o100 != 0
		case st.Gid == r.gid:
			x = perm&0o010 != 0
		default:
			x = perm&0o001 != 0
		}
		if !x {
			return false
		}
		if filepath.Dir(d) == d {
			return true
		}
	}
}

// dataRef is how the children name the data directory: its path, or, when
// an ancestor is not traversable by the user they run as (a cluster under
// /root or under t.TempDir() while running as root), an open descriptor
// passed as fd 3 and named /proc/self/fd/3. The kernel resolves that link
// to the directory itself without checking its ancestors; initdb and
// postgres pass it on to their own children, which inherit fd 3.
type dataRef struct {
	arg  string
	file *os.File
}

func openDataRef(dataDir string, r runAs) (dataRef, error) {
	if reachable(filepath.Dir(dataDir), r) {
		return dataRef{arg: dataDir}, nil
	}
	if !canPassDirFD {
		return dataRef{}, fmt.Errorf("localpg: %s is not reachable by %s (a parent directory is not traversable); choose a directory that is", dataDir, r)
	}
	f, err := os.Open(dataDir)
	if err != nil {
		return dataRef{}, fmt.Errorf("localpg: open data directory: %w", err)
	}
	return dataRef{arg: "/proc/self/fd/3", file: f}, nil
}

func (d dataRef) apply(cmd *exec.Cmd) {
	if d.file != nil {
		cmd.ExtraFiles = []*os.File{d.file}
	}
}

func (d dataRef) close() {
	if d.file != nil {
		_ = d.file.Close() // a read-only directory handle: nothing to flush
	}
}

// mkdirOwned creates dir (mode 0700) if needed and gives it to r.
func mkdirOwned(dir string, r runAs) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("localpg: %w", err)
	}
	if r.set {
		if err := os.Chown(dir, int(r.uid), int(r.gid)); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
	}
	return nil
}

// initdb creates a cluster with a trusted superuser "postgres".
func initdb(ctx context.Context, b binaries, ref dataRef, r runAs, sync bool, logPath string) error {
	args := []string{"-D", ref.arg, "-U", "postgres", "-A", "trust", "--encoding=UTF8", "--locale=C"}
	if !sync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, b.initdb(), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	r.apply(cmd.SysProcAttr)
	ref.apply(cmd)
	out, err := cmd.CombinedOutput()
	if werr := appendFile(logPath, out); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("localpg: initdb (PostgreSQL %s, as %s) failed: %w\n%s", b.text, r, err, tail(out, 20))
	}
	return nil
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// serverProc is a postgres child of this process.
type serverProc struct {
	pid  int
	done chan struct{} // closed when it has exited and been reaped
	err  error         // its exit status, valid after done
}

func (p *serverProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks for a fast shutdown (SIGINT) and waits; SIGKILL after timeout.
func (p *serverProc) stop(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localpg: stop postgres (pid %d): %w", p.pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localpg: kill postgres (pid %d): %w", p.pid, err)
	}
	<-p.done
	return fmt.Errorf("localpg: postgres (pid %d) ignored SIGINT for %s and was killed", p.pid, timeout)
}

// startParams describe one postgres start.
type startParams struct {
	bins      binaries
	dataDir   string // the real path, read by us
	ref       dataRef
	sockDir   string // "" = no Unix socket
	as        runAs
	throwaway bool   // fsync off, tied to this process
	logPath   string // postgres' stdout and stderr (appended)
	port      int    // preferred port; 0 = any free one
}

// startPostgres runs postgres directly (no pg_ctl) on a free port and
// waits until it accepts connections. A port taken between choosing it and
// postgres binding it is retried with another.
func startPostgres(ctx context.Context, p startParams, log *slog.Logger) (int, *serverProc, error) {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		port := p.port
		if port == 0 || attempt > 1 || !portFree(port) {
			var err error
			if port, err = freePort(); err != nil {
				return 0, nil, err
			}
		}
		args := []string{"-D", p.ref.arg, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + p.sockDir}
		if p.throwaway {
			args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
		}

		logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, nil, fmt.Errorf("localpg: %w", err)
		}
		var offset int64
		if fi, err := logf.Stat(); err == nil {
			offset = fi.Size()
		}
		cmd := exec.Command(p.bins.postgres(), args...) // not CommandContext: ctx ends with Find, the server must not
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		p.as.apply(cmd.SysProcAttr)
		p.ref.apply(cmd)
		var proc *serverProc
		if p.throwaway {
			proc, err = startTied(cmd)
		} else {
			proc, err = startDetached(cmd)
		}
		if cerr := logf.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("localpg: close %s: %w", p.logPath, cerr)
		}
		if err != nil {
			if proc != nil {
				err = errors.Join(err, proc.stop(stopTimeout))
			}
			return 0, nil, fmt.Errorf("localpg: start %s: %w", p.bins.postgres(), err)
		}

		err = waitReady(ctx, clusterURL(port), p.dataDir, proc, readyTimeout)
		if err == nil {
			return port, proc, nil
		}
		stopErr := proc.stop(stopTimeout)
		out := readFrom(p.logPath, offset)
		if attempt < attempts && bytes.Contains(out, []byte("could not bind")) && ctx.Err() == nil {
			log.Debug("localpg: port taken, retrying", "port", port)
			continue
		}
		return 0, nil, errors.Join(fmt.Errorf("localpg: postgres (PostgreSQL %s, as %s, port %d) did not start: %w; log %s ends with:\n%s",
			p.bins.text, p.as, port, err, p.logPath, tail(out, 20)), stopErr)
	}
}

// startDetached starts cmd in its own session so that it outlives us, and
// reaps it should it exit while we run.
func startDetached(cmd *exec.Cmd) (*serverProc, error) {
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func readFrom(path string, offset int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return []byte("(cannot read log: " + err.Error() + ")")
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return []byte("(cannot read log: " + err.Error() + ")")
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return append(b, []byte("\n(cannot read log: "+err.Error()+")")...)
	}
	return b
}

// waitReady polls until a superuser login works, proc exits (proc may be
// nil for a server we did not start) or timeout passes. For a server we
// started it first waits until its postmaster.pid in dataDir says it is
// ready: until then whatever answers on the port (another server that
// won a race for it) is not ours.
func waitReady(ctx context.Context, connURL, dataDir string, proc *serverProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var done <-chan struct{}
	if proc != nil {
		done = proc.done
	}
	for {
		err := errors.New("postmaster.pid does not say ready yet")
		if proc == nil || pidFileReady(dataDir, proc.pid) {
			err = probe(ctx, connURL, time.Second, true)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no connection after %s: %w", timeout, err)
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited: %v", proc.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pidFileReady reports whether dataDir/postmaster.pid names pid and, where
// the file has a status line (PostgreSQL 10 and later), says "ready".
func pidFileReady(dataDir string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	if strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return false
	}
	return len(lines) < 8 || strings.TrimSpace(lines[7]) == "ready"
}

func clusterURL(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	return l.Close() == nil
}

// startCluster starts (or, for a persistent directory, reuses) a cluster.
func startCluster(ctx context.Context, dir string, log *slog.Logger, globs []string) (*Server, error) {
	if dir == "" {
		return startThrowaway(ctx, log, globs)
	}
	return startPersistent(ctx, dir, log, globs)
}

// startThrowaway creates a cluster in a new temporary directory, tied to
// this process: Close stops it and removes the directory, and it dies with
// the process even without Close (see startTied).
func startThrowaway(ctx context.Context, log *slog.Logger, globs []string) (*Server, error) {
	bins, err := findBinaries(ctx, globs)
	if err != nil {
		return nil, err
	}
	b := bins[0]
	cleanupStale(os.TempDir(), log)
	as, err := pickUser("")
	if err != nil {
		return nil, err
	}

	base, err := os.MkdirTemp("", fmt.Sprintf("%s%d-*", throwawayPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			if err := os.RemoveAll(base); err != nil {
				log.Warn("localpg: remove failed throwaway cluster", "dir", base, "err", err)
			}
		}
	}()
	if as.set {
		// Let the user postgres runs as through to data/ and run/ (both its own, 0700).
		if err := os.Chmod(base, 0o711); err != nil {
			return nil, fmt.Errorf("localpg: %w", err)
		}
	}
	data, sock := filepath.Join(base, "data"), filepath.Join(base, "run")
	if err := mkdirOwned(data, as); err != nil {
		return nil, err
	}
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

	logPath := filepath.Join(base, "postgres.log")
	log.Info("localpg: starting a throwaway cluster", "dir", base, "version", b.text, "as", as.String())
	if err := initdb(ctx, b, ref, as, false, logPath); err != nil {
		return nil, err
	}
	port, proc, err := startPostgres(ctx, startParams{
		bins: b, dataDir: data, ref: ref, sockDir: sock, as: as, throwaway: true, logPath: logPath,
	}, log)
	if err != nil {
		return nil, err
	}
	ok = true
	s := &Server{URL: clusterURL(port), Source: SourceCluster, Dir: base}
	s.stop = func() error {
		err := proc.stop(stopTimeout)
		if rerr := os.RemoveAll(base); rerr != nil {
			err = errors.Join(err, fmt.Errorf("localpg: remove throwaway cluster: %w", rerr))
		}
		return err
	}
	log.Info("localpg: throwaway cluster ready", "url", s.URL)
	return s, nil
}

// cleanupStale removes the throwaway directories in tmp whose creating
// process is gone, stopping a postgres still running in one (possible where
// no parent death signal exists).
func cleanupStale(tmp string, log *slog.Logger) {
	matches, err := filepath.Glob(filepath.Join(tmp, throwawayPrefix+"*-*"))
	if err != nil {
		log.Warn("localpg: list stale throwaway clusters", "err", err)
		return
	}
	for _, m := range matches {
		pidText, _, found := strings.Cut(strings.TrimPrefix(filepath.Base(m), throwawayPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !found || err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		data := filepath.Join(m, "data")
		if spid, _, live := liveServer(data); live {
			log.Warn("localpg: stopping an orphaned throwaway cluster", "dir", m, "pid", spid)
			if err := stopPID(data, spid, 10*time.Second); err != nil {
				log.Warn("localpg: leaving an orphaned throwaway cluster", "dir", m, "err", err)
				continue
			}
		}
		if err := os.RemoveAll(m); err != nil {
			log.Warn("localpg: remove stale throwaway cluster", "dir", m, "err", err)
			continue
		}
		log.Debug("localpg: removed stale throwaway cluster", "dir", m)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// liveServer reads dataDir/postmaster.pid and reports the pid and port of
// a postmaster that is still running there.
func liveServer(dataDir string) (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 || !processAlive(pid) || !isPostgres(pid) {
		return 0, 0, false
	}
	return pid, port, true
}

// stopPID asks the postmaster pid of dataDir for a fast shutdown and waits
// until its postmaster.pid is gone or the process has exited.
func stopPID(dataDir string, pid int, timeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("localpg: stop postgres (pid %d): %w", pid, err)
	}
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) || !processAlive(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("localpg: postgres (pid %d) still running %s after SIGINT", pid, timeout)
}
