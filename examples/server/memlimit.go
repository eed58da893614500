package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strings"

	"github.com/mana-how/mana-auth/password"
)

// memoryHeadroom is what the server needs beside the password hasher's
// working memory: the binary's heap at rest (a few MiB), the collector's
// metadata, goroutine stacks and the requests in flight, which the
// admission bounds on the password routes.
const memoryHeadroom = 16 << 20

// defaultMemoryLimit is the Go runtime's soft memory limit the server sets
// when GOMEMLIMIT is unset: the hasher's working memory plus
// memoryHeadroom (54 MiB on two cores with the default m=19 MiB). The
// collector then frees garbage before the heap doubles past the hasher's
// memory — by itself, GOGC=100 lets 40 MiB of live argon2id memory grow to
// 80 MiB of heap — which keeps memory flat under a flood; collections stay
// cheap because the argon2id memory holds no pointers to scan. It is a
// soft limit: a process that needs more gets it, the collector works
// harder. GOMEMLIMIT (e.g. "off", or "200MiB") overrides it.
func defaultMemoryLimit(getenv func(string) string, hasher password.HasherConfig) (limit int64, ok bool) {
	if strings.TrimSpace(getenv("GOMEMLIMIT")) != "" {
		return 0, false
	}
	return hasher.WorkingMemory() + memoryHeadroom, true
}

// memoryLimit describes the runtime's limit now, for the start log.
func memoryLimit() string {
	l := debug.SetMemoryLimit(-1)
	if l == math.MaxInt64 {
		return "none"
	}
	return fmt.Sprintf("%.1fMiB", float64(l)/(1<<20))
}
