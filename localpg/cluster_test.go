//go:build unix

package localpg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThrowawayCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Find(ctx, Options{SkipLocal: true, Logger: testLogger(t)})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			assert.NoError(t, s.Close())
		}
	})

	assert.Equal(t, SourceCluster, s.Source)
	assert.Contains(t, s.URL, "sslmode=disable")
	assert.True(t, strings.HasPrefix(s.Dir, filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-", throwawayPrefix, os.Getpid()))),
		"dir %s is not named after this process", s.Dir)
	requireSuperuser(t, s.URL)
	if os.Geteuid() == 0 {
		fi, err := os.Stat(filepath.Join(s.Dir, "data"))
		require.NoError(t, err)
		assert.NotZero(t, fi.Sys().(*syscall.Stat_t).Uid, "data directory owned by root")
	}

	// URLFor reaches another database as another user.
	admin := connect(t, s.URL)
	_, err = admin.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'p@ss/word'")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE appdb OWNER app")
	require.NoError(t, err)
	appURL, err := s.URLFor("appdb", "app", "p@ss/word")
	require.NoError(t, err)
	assert.Equal(t, portOf(t, s.URL), portOf(t, appURL))
	var who, db string
	require.NoError(t, connect(t, appURL).QueryRow(ctx, "SELECT current_user, current_database()").Scan(&who, &db))
	assert.Equal(t, "app", who)
	assert.Equal(t, "appdb", db)

	port := portOf(t, s.URL)
	require.False(t, refuses(port), "cluster does not listen on %d", port)
	// The sessions above are still open: Close must not wait for them
	// (fast shutdown, not smart).
	require.NoError(t, s.Close())
	closed = true
	assert.True(t, refuses(port), "port %d still answers after Close", port)
	assert.NoDirExists(t, s.Dir)
	require.NoError(t, s.Close(), "second Close")
}

func TestPersistentCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	t.Cleanup(func() { assert.NoError(t, StopCluster(dir)) }) // runs before t.TempDir's removal
	opts := Options{SkipLocal: true, ClusterDir: dir, Logger: testLogger(t)}

	// Several first calls at once create and start it once.
	const n = 3
	start := make(chan struct{})
	type result struct {
		s   *Server
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			<-start
			s, err := Find(ctx, opts)
			results <- result{s, err}
		}()
	}
	close(start)
	var first *Server
	for range n {
		r := <-results
		require.NoError(t, r.err)
		assert.Equal(t, SourceCluster, r.s.Source)
		assert.Equal(t, dir, r.s.Dir)
		if first == nil {
			first = r.s
		}
		assert.Equal(t, first.URL, r.s.URL, "concurrent Finds disagree")
	}
	requireSuperuser(t, first.URL)
	initdbRuns := func() int {
		b, err := os.ReadFile(filepath.Join(dir, logFileName))
		require.NoError(t, err)
		return strings.Count(string(b), "Success. You can now start the database server")
	}
	require.Equal(t, 1, initdbRuns())
	pid1, port1, ok := liveServer(filepath.Join(dir, dataDirName))
	require.True(t, ok, "no live postmaster.pid")
	assert.Equal(t, portOf(t, first.URL), port1)

	conn := connect(t, first.URL)
	_, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	// Close leaves a persistent cluster running; Find reuses it.
	require.NoError(t, first.Close())
	require.False(t, refuses(port1), "Close stopped a persistent cluster")
	s2, err := Find(ctx, opts)
	require.NoError(t, err)
	assert.Equal(t, first.URL, s2.URL)
	pid2, _, ok := liveServer(filepath.Join(dir, dataDirName))
	require.True(t, ok)
	assert.Equal(t, pid1, pid2, "a running cluster was restarted")

	// Stopped, it is started again from the same data on the same port.
	require.NoError(t, StopCluster(dir))
	require.True(t, refuses(port1), "port %d answers after StopCluster", port1)
	require.NoFileExists(t, filepath.Join(dir, dataDirName, "postmaster.pid"))
	s3, err := Find(ctx, opts)
	require.NoError(t, err)
	assert.Equal(t, first.URL, s3.URL, "the recorded port was not reused")
	pid3, _, ok := liveServer(filepath.Join(dir, dataDirName))
	require.True(t, ok)
	assert.NotEqual(t, pid1, pid3)
	assert.Equal(t, 1, initdbRuns(), "initdb ran again on an existing cluster")
	var v string
	require.NoError(t, connect(t, s3.URL).QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	assert.Equal(t, "survives", v)
}

func TestFindBinaries(t *testing.T) {
	ctx := context.Background()
	bins, err := findBinaries(ctx, defaultBinGlobs)
	require.NoError(t, err, "the PostgreSQL server binaries are expected on machines running this suite")
	for i, b := range bins {
		assert.FileExists(t, b.initdb())
		assert.FileExists(t, b.postgres())
		assert.NotEmpty(t, b.major)
		if i > 0 {
			assert.GreaterOrEqual(t, bins[i-1].version, b.version, "not newest first")
		}
	}

	t.Setenv("PATH", "")
	_, err = findBinaries(ctx, nil)
	require.ErrorIs(t, err, errNoBinaries)
}

func TestReachable(t *testing.T) {
	// Directly in os.TempDir() (1777 on Unix), unlike t.TempDir()'s 0700 parent.
	base, err := os.MkdirTemp("", "localpg-reachable-")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, os.RemoveAll(base)) })
	inner := filepath.Join(base, "a", "b")
	require.NoError(t, os.MkdirAll(inner, 0o755))
	require.True(t, reachable(filepath.Dir(base), runAs{set: true, uid: 54321, gid: 54321}), "precondition: %s is traversable", filepath.Dir(base))

	fi, err := os.Stat(base)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	tests := []struct {
		name string
		mode os.FileMode
		as   runAs
		want bool
	}{
		{"0700, other user", 0o700, runAs{set: true, uid: 54321, gid: 54321}, false},
		{"0711, other user", 0o711, runAs{set: true, uid: 54321, gid: 54321}, true},
		{"0700, owner", 0o700, runAs{set: true, uid: st.Uid, gid: 54321}, true},
		{"0710, group", 0o710, runAs{set: true, uid: 54321, gid: st.Gid}, true},
		{"0701, group only", 0o701, runAs{set: true, uid: 54321, gid: st.Gid}, false},
		{"0000, ourselves", 0o000, runAs{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.Chmod(base, tc.mode))
			t.Cleanup(func() { assert.NoError(t, os.Chmod(base, 0o700)) })
			assert.Equal(t, tc.want, reachable(inner, tc.as), "reachable(%s) with %s mode %o", inner, tc.name, tc.mode)
		})
	}
}
