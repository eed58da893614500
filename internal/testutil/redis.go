package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisURL returns the URL of a Redis for the tests of the Redis-backed
// limiters and the scale-out test, found in this order:
//
//  1. TEST_REDIS_URL;
//  2. a server answering on 127.0.0.1:6379;
//  3. a throwaway redis-server (Debian package redis-server) this test
//     binary starts on a free loopback port, without persistence, shared
//     by its tests and gone when the binary exits.
//
// Tests keep apart by key prefix, never by flushing. Without any of them
// the test fails, or under -short skips, saying how to get one.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		if err := pingRedis(u); err != nil {
			t.Fatalf("testutil: TEST_REDIS_URL=%s does not answer: %v", u, err)
		}
		return u
	}
	redisOnce.Do(func() { redisURL, redisErr = findRedis() })
	if redisErr != nil {
		msg := "testutil: no Redis: " + redisErr.Error() + "; install the redis-server package, start one " +
			"(`redis-server --daemonize yes`), or point TEST_REDIS_URL at one"
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return redisURL
}

var (
	redisOnce sync.Once
	redisURL  string
	redisErr  error
)

const defaultRedisURL = "redis://127.0.0.1:6379/0"

func findRedis() (string, error) {
	if pingRedis(defaultRedisURL) == nil {
		return defaultRedisURL, nil
	}
	return startRedis()
}

// startRedis starts a redis-server of this test binary's own.
func startRedis() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("nothing answers on 127.0.0.1:6379 and redis-server is not on PATH")
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", os.TempDir(), "--daemonize", "no") // #nosec G204 -- the redis-server binary on PATH, with fixed arguments
	p := &Process{cmd: cmd, out: &LockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	// Tied to the test binary, not to a test: every test of the binary
	// shares it, and it dies with the binary.
	if err := startTied(cmd, p); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := pingRedis(u)
		switch {
		case err == nil:
			return u, nil
		case p.Exited():
			return "", fmt.Errorf("%s exited: %v\n%s", bin, p.err, p.Output())
		case time.Now().After(deadline):
			return "", fmt.Errorf("%s on port %d does not answer after 10s: %v\n%s", bin, port, err, p.Output())
		}
	}
}

func pingRedis(u string) error {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return errors.Join(c.Ping(ctx).Err(), c.Close())
}
