package testutil

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartRedis: the throwaway redis-server RedisURL falls back to when
// nothing answers on 127.0.0.1:6379 starts and answers (where one answers
// there, RedisURL itself never takes this path, so it is tested here).
func TestStartRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a redis-server")
	}
	u, err := startRedis()
	require.NoError(t, err, "install the redis-server package")
	assert.NotEqual(t, defaultRedisURL, u)
	assert.NoError(t, pingRedis(u))
}
