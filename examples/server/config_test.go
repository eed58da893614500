package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mana-how/mana-auth/password"
)

var update = flag.Bool("update", false, "rewrite README.md's environment table from environment.go")

// Guards the default base URL following MANA_AUTH_ADDR: before, moving the
// server to another port left every mail link, the token issuer and the
// WebAuthn origin on localhost:8080.
func TestBaseURLFollowsTheAddress(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	for _, tc := range []struct {
		addr, base, want, rpID string
	}{
		{"", "", "http://localhost:8080", "localhost"},
		{"127.0.0.1:9090", "", "http://localhost:9090", "localhost"},
		{"0.0.0.0:7000", "", "http://localhost:7000", "localhost"},
		{"[::1]:7001", "", "http://localhost:7001", "localhost"},
		{"[::]:7002", "", "http://localhost:7002", "localhost"},
		{":7003", "", "http://localhost:7003", "localhost"},
		{"auth.internal:8443", "", "http://auth.internal:8443", "auth.internal"},
		{"127.0.0.1:9090", "https://auth.example.com", "https://auth.example.com", "auth.example.com"},
	} {
		env := map[string]string{"MANA_AUTH_STATE_DIR": state, "MANA_AUTH_ADDR": tc.addr, "MANA_AUTH_BASE_URL": tc.base}
		cfg, err := LoadConfig(mapEnv(env))
		require.NoError(t, err, "env %v", env)
		assert.Equal(t, tc.want, cfg.BaseURL.String(), "env %v", env)
		assert.Equal(t, tc.rpID, cfg.RPID, "env %v", env)
	}
	// An IP address other than a wildcard or loopback one is kept (links
	// must reach it); WebAuthn then needs a name, and the error says how.
	_, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state, "MANA_AUTH_ADDR": "10.1.2.3:8080"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WEBAUTHN_RP_ID:")
	assert.Contains(t, err.Error(), "MANA_AUTH_BASE_URL")
	assert.Equal(t, "http://10.1.2.3:8080", defaultBaseURL("10.1.2.3:8080"))
}

func TestLogLevelAndFormat(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	prod := map[string]string{"MANA_AUTH_ENV": "production", "MANA_AUTH_BASE_URL": "https://auth.example.com",
		"DATABASE_URL": "postgres://a@b/c", "MANA_AUTH_KEK": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", "MANA_AUTH_SIGNING_KEY": "x"}
	with := func(base map[string]string, kv ...string) map[string]string {
		env := map[string]string{"MANA_AUTH_STATE_DIR": state}
		for k, v := range base {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		level slog.Level
		json  bool
	}{
		{"development defaults", with(nil), slog.LevelInfo, false},
		{"production defaults", with(prod), slog.LevelInfo, true},
		{"json in development", with(nil, "MANA_AUTH_LOG_FORMAT", "json"), slog.LevelInfo, true},
		{"text in production", with(prod, "MANA_AUTH_LOG_FORMAT", "text"), slog.LevelInfo, false},
		{"debug", with(nil, "MANA_AUTH_LOG_LEVEL", "debug"), slog.LevelDebug, false},
		{"warn", with(nil, "MANA_AUTH_LOG_LEVEL", "WARN"), slog.LevelWarn, false},
		{"error", with(nil, "MANA_AUTH_LOG_LEVEL", "error"), slog.LevelError, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(mapEnv(tc.env))
			require.NoError(t, err)
			assert.Equal(t, tc.level, cfg.LogLevel)
			assert.Equal(t, tc.json, cfg.LogJSON)

			var out bytes.Buffer
			logger := newLogger(cfg, &out)
			logger.Debug("debug line")
			logger.Info("info line")
			logger.Error("error line")
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			assert.Equal(t, tc.level <= slog.LevelDebug, strings.Contains(out.String(), "debug line"), "debug logged at %v", tc.level)
			assert.Equal(t, tc.level <= slog.LevelInfo, strings.Contains(out.String(), "info line"), "info logged at %v", tc.level)
			assert.Contains(t, out.String(), "error line")
			for _, l := range lines {
				assert.Equal(t, tc.json, json.Valid([]byte(l)), "line %q in format json=%v", l, tc.json)
			}
		})
	}
	for _, env := range []map[string]string{
		with(nil, "MANA_AUTH_LOG_LEVEL", "verbose"),
		with(nil, "MANA_AUTH_LOG_FORMAT", "logfmt"),
	} {
		_, err := LoadConfig(mapEnv(env))
		require.Error(t, err, "env %v", env)
		for k := range env {
			if strings.HasPrefix(k, "MANA_AUTH_LOG_") {
				assert.Contains(t, err.Error(), k+":")
			}
		}
	}
}

func TestRefreshGraceConfig(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 10 * time.Second},
		{"1s", time.Second},
		{"2500ms", 2500 * time.Millisecond},
		{"1m", time.Minute},
	} {
		cfg, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state, "MANA_AUTH_REFRESH_GRACE": tc.value}))
		require.NoError(t, err, "MANA_AUTH_REFRESH_GRACE=%q", tc.value)
		assert.Equal(t, tc.want, cfg.RefreshGrace, "MANA_AUTH_REFRESH_GRACE=%q", tc.value)
	}
	for _, bad := range []string{"10", "ten seconds", "0", "0s", "999ms", "-5s", "61s", "1h"} {
		_, err := LoadConfig(mapEnv(map[string]string{"MANA_AUTH_STATE_DIR": state, "MANA_AUTH_REFRESH_GRACE": bad}))
		require.Error(t, err, "MANA_AUTH_REFRESH_GRACE=%q", bad)
		assert.Contains(t, err.Error(), "MANA_AUTH_REFRESH_GRACE:", "MANA_AUTH_REFRESH_GRACE=%q", bad)
	}
}

// recordingEnv answers from env and records every name asked for.
type recordingEnv struct {
	env  map[string]string
	read map[string]bool
}

func (r *recordingEnv) getenv(name string) string {
	r.read[name] = true
	return r.env[name]
}

// TestHelpListsEveryVariable: every variable LoadConfig reads is in the
// environment table (so in --help and README.md), and every variable of
// the table is read — a variable added to LoadConfig without its line,
// or a line left after its variable went, fails here. LoadConfig runs
// with several environments, since some variables are read only on some
// paths.
func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	rec := &recordingEnv{read: map[string]bool{}}
	for _, env := range []map[string]string{
		{},
		{"MANA_AUTH_STATE_DIR": state, "DATABASE_URL": "postgres://a@b/c"},
		{"MANA_AUTH_ENV": "production", "MANA_AUTH_BASE_URL": "https://auth.example.com", "DATABASE_URL": "postgres://a@b/c",
			"MANA_AUTH_KEK": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=", "MANA_AUTH_SIGNING_KEY": "x", "MANA_AUTH_STATE_DIR": state},
	} {
		rec.env = env
		_, _ = LoadConfig(rec.getenv) // only the names read matter here
	}
	// Standard variables of the platform, named in MANA_AUTH_STATE_DIR's
	// default rather than as lines of their own.
	platform := map[string]bool{"HOME": true, "XDG_STATE_HOME": true}
	// Documented, but read by the Go runtime and by main (the memory
	// limit), not by LoadConfig.
	runtimeVars := map[string]bool{"GOMEMLIMIT": true}
	var help bytes.Buffer
	require.NoError(t, command(context.Background(), []string{"--help"}, rec.getenv, &help, &help))
	documented := map[string]bool{}
	for _, v := range environment {
		documented[v.Name] = true
		assert.True(t, rec.read[v.Name] || runtimeVars[v.Name], "%s is documented but LoadConfig never reads it", v.Name)
		assert.Contains(t, help.String(), "\n  "+v.Name+"\n", "--help lists %s", v.Name)
	}
	for name := range rec.read {
		if !platform[name] {
			assert.True(t, documented[name], "LoadConfig reads %s, which environment.go does not document", name)
		}
	}
	for _, c := range commands {
		assert.Contains(t, help.String(), c.usage)
	}
	for _, arg := range []string{"-h", "help", "-help"} {
		var out bytes.Buffer
		require.NoError(t, command(context.Background(), []string{arg}, rec.getenv, &out, &out), arg)
		assert.Equal(t, help.String(), out.String(), "server %s", arg)
	}
	err := command(context.Background(), []string{"serv"}, rec.getenv, &help, &help)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--help")
}

// TestREADMEEnvironmentTable: README.md's configuration table is the
// environment table of environment.go (go test -run
// TestREADMEEnvironmentTable -update rewrites it).
func TestREADMEEnvironmentTable(t *testing.T) {
	const path = "../../README.md"
	const begin = "<!-- environment table: generated from examples/server/environment.go by go test ./examples/server -run TestREADMEEnvironmentTable -update -->\n"
	const end = "<!-- end of the environment table -->"
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	readme := string(b)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	require.True(t, i >= 0 && j > i, "README.md lacks the environment table markers")
	got, want := readme[i+len(begin):j], markdownEnvironment()
	if *update && got != want {
		require.NoError(t, os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o600))
		return
	}
	assert.Equal(t, want, got, "README.md's environment table differs from environment.go; run go test ./examples/server -run TestREADMEEnvironmentTable -update")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	bi, err := debug.ParseBuildInfo("path\tgithub.com/mana-how/mana-auth/examples/server\n" +
		"mod\tgithub.com/mana-how/mana-auth\tv1.4.0\t\n" +
		"build\tvcs=git\nbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n" +
		"build\tvcs.time=2026-12-06T18:00:00Z\nbuild\tvcs.modified=true\n")
	require.NoError(t, err)
	bi.GoVersion = "go1.26.8"
	b := buildFrom(bi)
	assert.Equal(t, buildInfo{Version: "v1.4.0", Revision: "0123456789abcdef0123456789abcdef01234567",
		Time: "2026-12-06T18:00:00Z", Modified: true, GoVersion: "go1.26.8"}, b)
	assert.Equal(t, "mana-auth server v1.4.0 revision 0123456789abcdef0123456789abcdef01234567 2026-12-06T18:00:00Z (modified) go1.26.8", b.String())
	bare := buildFrom(&debug.BuildInfo{GoVersion: "go1.26.8"})
	assert.Equal(t, "mana-auth server unknown go1.26.8", bare.String())

	// The command prints the running binary's information.
	var out bytes.Buffer
	require.NoError(t, command(context.Background(), []string{"version", "-json"}, mapEnv(nil), &out, &out))
	var got buildInfo
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), "%s", out.String())
	assert.Equal(t, runtime.Version(), got.GoVersion)
	assert.NotEmpty(t, got.Version)
	out.Reset()
	require.NoError(t, command(context.Background(), []string{"version"}, mapEnv(nil), &out, &out))
	assert.True(t, strings.HasPrefix(out.String(), "mana-auth server "), "%q", out.String())
	assert.True(t, strings.HasSuffix(out.String(), runtime.Version()+"\n"), "%q", out.String())
}

func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	s, _ := testServer(t, nil)
	c := newSpecClient(t, s.Handler())
	_, body := c.do("GET", "/metrics", nil, nil)
	b := currentBuild()
	want := `mana_auth_build_info{goversion="` + runtime.Version() + `",revision="` + b.Revision + map[bool]string{true: "-modified"}[b.Modified] +
		`",version="` + b.Version + `"} 1`
	lines := strings.Split(string(body), "\n")
	assert.True(t, slices.Contains(lines, want), "want the line %s in\n%s", want, body)
}

// TestDefaultMemoryLimit: unless GOMEMLIMIT is set, the server's limit is
// the hasher's working memory plus the headroom; with it set the runtime's
// own parsing of GOMEMLIMIT stands.
func TestDefaultMemoryLimit(t *testing.T) {
	t.Parallel()
	h := password.HasherConfig{Params: password.Params{Memory: 1024}, MaxConcurrent: 1}
	limit, ok := defaultMemoryLimit(mapEnv(nil), h)
	require.True(t, ok)
	assert.Equal(t, int64(1<<20+memoryHeadroom), limit)
	limit, ok = defaultMemoryLimit(mapEnv(nil), password.HasherConfig{})
	require.True(t, ok)
	assert.Equal(t, int64(runtime.GOMAXPROCS(0))*19<<20+memoryHeadroom, limit)
	for _, v := range []string{"off", "200MiB"} {
		_, ok := defaultMemoryLimit(mapEnv(map[string]string{"GOMEMLIMIT": v}), h)
		assert.False(t, ok, "GOMEMLIMIT=%s", v)
	}
}
