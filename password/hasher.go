package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/argon2"
)

// Params are the argon2id parameters of new password hashes. A zero
// field takes its default: Memory 19*1024 KiB (19 MiB), Time 2, Threads 1,
// SaltLen 16 bytes, KeyLen 32 bytes — the OWASP recommendation, equivalent
// to ASVS 5.0's m=46 MiB, t=1, p=1 (which is also accepted: set Memory
// 46*1024 and Time 1).
//
// Raising a parameter later is safe: hashes made with other parameters
// still verify, and Verify reports needsRehash so the caller can store a
// new hash on the next successful login.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// HasherConfig configures NewHasher. Every zero value means its default.
type HasherConfig struct {
	// Params are the parameters of new hashes (see Params).
	Params Params
	// MaxConcurrent bounds the argon2id computations running at once.
	// Default and maximum: the cores the process may use,
	// runtime.GOMAXPROCS(0) divided by Params.Threads (at least 1); a
	// larger value is lowered to it, because computations beyond the
	// cores add memory and latency, not throughput. Each running
	// computation owns its working memory (Params.Memory) and keeps it for
	// the next one, so the hasher's memory is MaxConcurrent*Params.Memory
	// however many logins arrive together, and it allocates none per call
	// while it is busy (see KeepMemory for when it is idle).
	MaxConcurrent int
	// MaxQueue bounds the calls that wait for a slot. A call that finds
	// every slot busy and MaxQueue calls already waiting is shed at once
	// with SERVICE_UNAVAILABLE (Retry-After 1) instead of queueing, so a
	// flood costs a few bytes per refused request, not a waiting goroutine
	// each. Default 4*MaxConcurrent (the queue drains in about four
	// computation times); negative: no queue, shed whenever every slot is
	// busy.
	MaxQueue int
	// MaxWait is how long a queued call waits for a free slot before it
	// gives up with SERVICE_UNAVAILABLE (RemainingSeconds 1, sent as
	// Retry-After). Default 5s.
	MaxWait time.Duration
	// Rand is the source of salts. Default crypto/rand.Reader.
	Rand io.Reader
	// KeepMemory is how long the slots keep their working memory once the
	// hasher has no computation left: after that long without one, every
	// free slot drops its memory for the collector to return, so a server
	// that signed people in an hour ago holds no argon2id blocks; the next
	// computation of each slot allocates its block again. Default one
	// minute; negative: kept for the hasher's lifetime.
	KeepMemory time.Duration
}

// Hasher hashes and verifies passwords with argon2id in PHC string form,
// running at most MaxConcurrent computations at once with at most MaxQueue
// calls waiting. It is safe for concurrent use.
type Hasher struct {
	params   Params
	slots    chan *pwSlot // the free slots; a call holds one while it computes
	maxQueue int64        // calls allowed to wait for a slot; 0: none
	maxWait  time.Duration
	rand     io.Reader
	dummy    string // a hash of a random password, made with params by NewHasher

	all         []*pwSlot     // every slot, free or held, for dropping idle memory
	keep        time.Duration // KeepMemory; negative: forever
	lastRelease atomic.Int64  // unix nanoseconds of the last computation's end
	dropArmed   atomic.Bool   // dropTimer is set to fire
	dropTimer   *time.Timer   // drops the free slots' memory after keep without computations
	dropped     atomic.Uint64 // blocks dropped after idling

	waiting  atomic.Int64  // calls waiting for a slot now
	shed     atomic.Uint64 // calls refused because the queue was full
	timedOut atomic.Uint64 // calls that waited MaxWait in vain
	computed atomic.Uint64 // argon2id computations done

	// derive computes the argon2id key in mem; tests wrap it to observe
	// concurrency.
	derive func(mem *argon2.Memory, password, salt []byte, p Params) []byte
}

// pwSlot is the right to run one computation, with the working memory
// that computation uses and leaves for the next. Its holder locks mu for
// the computation; dropping idle memory only takes slots whose mu is free.
type pwSlot struct {
	mu  sync.Mutex
	mem argon2.Memory
}

const (
	pwDefaultMemory  = 19 * 1024
	pwDefaultTime    = 2
	pwDefaultThreads = 1
	pwDefaultSaltLen = 16
	pwDefaultKeyLen  = 32
	pwDefaultMaxWait = 5 * time.Second
	pwQueuePerSlot   = 4 // default MaxQueue per slot
	pwDefaultKeep    = time.Minute

	// Sanity bounds for configured and stored parameters. A stored hash
	// outside them is treated as corrupt, so a damaged row cannot make one
	// login allocate gigabytes or spin for minutes.
	pwMaxMemory  = 1 << 20 // KiB: 1 GiB
	pwMaxTime    = 64
	pwMinSaltLen = 8 // RFC 9106 minimum
	pwMaxSaltLen = 64
	pwMinKeyLen  = 16
	pwMaxKeyLen  = 128
	pwMaxPHCLen  = 512 // longer than any PHC string within the bounds above

	pwAlgorithm = "argon2id"
	pwVersion   = argon2.Version // 0x13 = 19, the only version x/crypto implements
)

// pwWithDefaults fills zero fields with their defaults.
func (p Params) pwWithDefaults() Params {
	if p.Memory == 0 {
		p.Memory = pwDefaultMemory
	}
	if p.Time == 0 {
		p.Time = pwDefaultTime
	}
	if p.Threads == 0 {
		p.Threads = pwDefaultThreads
	}
	if p.SaltLen == 0 {
		p.SaltLen = pwDefaultSaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = pwDefaultKeyLen
	}
	return p
}

// pwValidate checks complete parameters (after defaults) against argon2's
// rules and the sanity bounds.
func (p Params) pwValidate() error {
	switch {
	case p.Threads < 1:
		return errors.New("threads must be at least 1")
	case p.Time < 1 || p.Time > pwMaxTime:
		return fmt.Errorf("time %d outside [1, %d]", p.Time, pwMaxTime)
	case uint64(p.Memory) < 8*uint64(p.Threads):
		return fmt.Errorf("memory %d KiB below 8*threads (%d)", p.Memory, 8*uint32(p.Threads))
	case p.Memory > pwMaxMemory:
		return fmt.Errorf("memory %d KiB above %d KiB", p.Memory, pwMaxMemory)
	case p.SaltLen < pwMinSaltLen || p.SaltLen > pwMaxSaltLen:
		return fmt.Errorf("salt length %d outside [%d, %d]", p.SaltLen, pwMinSaltLen, pwMaxSaltLen)
	case p.KeyLen < pwMinKeyLen || p.KeyLen > pwMaxKeyLen:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, pwMinKeyLen, pwMaxKeyLen)
	}
	return nil
}

// NewHasher validates cfg, fills in defaults and computes the dummy hash
// DummyVerify checks against (one argon2id computation with cfg's
// parameters). It returns an error for parameters argon2id refuses (Threads
// 0, Time 0, Memory below 8*Threads) or outside the sanity bounds (Memory
// above 1 GiB, Time above 64, SaltLen outside 8..64, KeyLen outside
// 16..128), and for a negative MaxConcurrent or MaxWait.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	p, n, queue, err := cfg.pwBounds()
	if err != nil {
		return nil, err
	}
	if cfg.MaxWait < 0 {
		return nil, fmt.Errorf("password: hasher config: MaxWait %v is negative", cfg.MaxWait)
	}
	keep := cfg.KeepMemory
	if keep == 0 {
		keep = pwDefaultKeep
	}
	wait := cfg.MaxWait
	if wait == 0 {
		wait = pwDefaultMaxWait
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	h := &Hasher{
		params:   p,
		slots:    make(chan *pwSlot, n),
		maxQueue: int64(queue),
		maxWait:  wait,
		rand:     r,
		derive:   pwArgon2id,
		keep:     keep,
	}
	for range n {
		s := &pwSlot{}
		h.all = append(h.all, s)
		h.slots <- s
	}
	if keep > 0 {
		h.dropTimer = time.AfterFunc(keep, h.pwDropIdle)
		h.dropTimer.Stop()
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(r, secret); err != nil {
		return nil, fmt.Errorf("password: hasher: dummy password: %w", err)
	}
	// The dummy is computed in a slot of its own, dropped afterwards: a
	// real slot would keep the 19 MiB block from start-up on, so an idle
	// server that has not yet verified a password would hold it for
	// nothing. The first computation of each slot allocates its block.
	dummy, err := h.pwHash(&pwSlot{}, secret)
	if err != nil {
		return nil, fmt.Errorf("password: hasher: dummy hash: %w", err)
	}
	h.dummy = dummy
	return h, nil
}

// pwBounds are the parameters, slots and queue length of a Hasher made
// from c now (slots depend on GOMAXPROCS).
func (c HasherConfig) pwBounds() (p Params, slots, queue int, err error) {
	p = c.Params.pwWithDefaults()
	if err := p.pwValidate(); err != nil {
		return p, 0, 0, fmt.Errorf("password: hasher config: params: %w", err)
	}
	if c.MaxConcurrent < 0 {
		return p, 0, 0, fmt.Errorf("password: hasher config: MaxConcurrent %d is negative", c.MaxConcurrent)
	}
	cores := max(1, runtime.GOMAXPROCS(0)/int(p.Threads))
	slots = c.MaxConcurrent
	if slots == 0 || slots > cores {
		slots = cores
	}
	queue = c.MaxQueue
	switch {
	case queue == 0:
		queue = pwQueuePerSlot * slots
	case queue < 0:
		queue = 0
	}
	return p, slots, queue, nil
}

// WorkingMemory is the most argon2id working memory, in bytes, a Hasher
// made from c now holds: one Params.Memory per slot, allocated at the
// first computation in each slot and kept while computations follow
// (HasherConfig.KeepMemory). A host sizing a memory limit
// (GOMEMLIMIT) adds it to what the rest of the process needs. It is 0 for
// a configuration NewHasher refuses.
func (c HasherConfig) WorkingMemory() int64 {
	p, slots, _, err := c.pwBounds()
	if err != nil {
		return 0
	}
	return int64(slots) * int64(p.Memory) << 10
}

// Hash returns password's argon2id hash in PHC string form, e.g.
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (salt and hash in
// unpadded standard base64), with a fresh random salt. The password is
// hashed exactly as given; apply Policy.Check first.
//
// Errors: SERVICE_UNAVAILABLE (an *autherr.Error with RemainingSeconds 1)
// when every slot is busy and the queue full, or no slot frees up within
// MaxWait; ctx's error (which classifies as SERVICE_UNAVAILABLE) when ctx
// ends first; INTERNAL when the random source fails.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	slot, err := h.pwAcquire(ctx)
	if err != nil {
		return "", fmt.Errorf("password: hash password: %w", err)
	}
	defer h.pwRelease(slot)
	phc, err := h.pwHash(slot, []byte(password))
	if err != nil {
		return "", autherr.Wrap(autherr.Internal, fmt.Errorf("password: hash password: %w", err), "")
	}
	return phc, nil
}

// pwHash hashes in slot, which the caller holds.
func (h *Hasher) pwHash(slot *pwSlot, password []byte) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := h.derive(h.pwMemory(slot, h.params), password, salt, h.params)
	h.computed.Add(1)
	return pwEncodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches phc, a hash made by Hash. The
// password is used exactly as received — no trimming, no Unicode
// normalisation — and the keys are compared in constant time. The stored
// parameters are used, whatever h's are; needsRehash is true when the
// password matched and the stored parameters (memory, time, threads, salt
// or key length) differ from h's, so the caller should store a fresh Hash
// now. needsRehash is always false when ok is false.
//
// A wrong password is (false, false, nil). A phc that is not an argon2id
// v=19 PHC string within the sanity bounds — another algorithm such as
// $argon2i$ or $2b$ (bcrypt), an empty string, a damaged row — is an
// INTERNAL error, never "wrong password": a stored hash we cannot read is
// corruption or a bug, not the user's fault. A user without a password has
// no hash to verify: call DummyVerify and answer as for a wrong password.
//
// Other errors as for Hash: SERVICE_UNAVAILABLE when busy, ctx's error.
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok, needsRehash bool, err error) {
	stored, err := pwParsePHC(phc)
	if err != nil {
		return false, false, autherr.Wrap(autherr.Internal, fmt.Errorf("password: verify password: stored hash: %w", err), "")
	}
	slot, err := h.pwAcquire(ctx)
	if err != nil {
		return false, false, fmt.Errorf("password: verify password: %w", err)
	}
	defer h.pwRelease(slot)
	key := h.derive(h.pwMemory(slot, stored.params), []byte(password), stored.salt, stored.params)
	h.computed.Add(1)
	if subtle.ConstantTimeCompare(key, stored.key) != 1 {
		return false, false, nil
	}
	return true, stored.params != h.params, nil
}

// DummyVerify does exactly the work of a Verify against a hash made with
// h's parameters — parse, wait for a slot, one argon2id computation,
// compare — and throws the answer away. Call it on every login branch that
// has no hash to check (unknown email, empty password, locked account, a
// user without a password), so those branches take as long as a wrong
// password and timing does not reveal which accounts exist.
//
// Errors as for Hash: SERVICE_UNAVAILABLE when busy, ctx's error.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// HasherStats are a Hasher's counters, for metrics.
type HasherStats struct {
	MaxConcurrent int    // slots: computations that may run at once
	MaxQueue      int    // calls that may wait for a slot
	Running       int    // computations running now
	Waiting       int    // calls waiting for a slot now
	Shed          uint64 // calls refused at once because the queue was full
	TimedOut      uint64 // calls that waited MaxWait for a slot in vain
	Computed      uint64 // argon2id computations done (Hash, Verify and DummyVerify each do one)
	Dropped       uint64 // working memory blocks dropped after KeepMemory without computations
}

// Stats returns h's counters now.
func (h *Hasher) Stats() HasherStats {
	return HasherStats{
		MaxConcurrent: cap(h.slots),
		MaxQueue:      int(h.maxQueue),
		Running:       cap(h.slots) - len(h.slots),
		Waiting:       int(h.waiting.Load()),
		Shed:          h.shed.Load(),
		TimedOut:      h.timedOut.Load(),
		Computed:      h.computed.Load(),
		Dropped:       h.dropped.Load(),
	}
}

// pwAcquire takes a free slot, queueing for at most h.maxWait behind at
// most h.maxQueue other callers. The caller gives the slot back with
// pwRelease.
func (h *Hasher) pwAcquire(ctx context.Context) (*pwSlot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case s := <-h.slots:
		s.mu.Lock()
		return s, nil
	default:
	}
	if h.waiting.Add(1) > h.maxQueue {
		h.waiting.Add(-1)
		h.shed.Add(1)
		return nil, h.pwBusy(fmt.Errorf("password hasher busy: %d computations running and %d queued; shed", cap(h.slots), h.maxQueue))
	}
	defer h.waiting.Add(-1)
	timer := time.NewTimer(h.maxWait)
	defer timer.Stop()
	select {
	case s := <-h.slots:
		s.mu.Lock()
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		h.timedOut.Add(1)
		return nil, h.pwBusy(fmt.Errorf("password hasher busy: no free slot within %v (%d concurrent)", h.maxWait, cap(h.slots)))
	}
}

// pwBusy is the answer of a call that gets no slot: SERVICE_UNAVAILABLE,
// which never counts toward a lockout, with Retry-After 1 — a queue of
// 4*MaxConcurrent computations drains in well under a second.
func (h *Hasher) pwBusy(cause error) error {
	return &autherr.Error{
		Code:             autherr.ServiceUnavailable,
		Message:          "too many password checks in progress; retry shortly",
		Err:              cause,
		RemainingSeconds: 1,
	}
}

// pwRelease gives s back and, when memory is dropped after idling,
// makes sure the drop is scheduled.
func (h *Hasher) pwRelease(s *pwSlot) {
	s.mu.Unlock()
	if h.dropTimer != nil {
		h.lastRelease.Store(time.Now().UnixNano())
		if h.dropArmed.CompareAndSwap(false, true) {
			h.dropTimer.Reset(h.keep)
		}
	}
	h.slots <- s
}

// pwDropIdle runs on dropTimer: when no computation has ended for h.keep,
// every slot not held drops its working memory; otherwise it looks again
// when h.keep will have passed since the last one. The timer is disarmed
// before the slots are visited, so a computation ending meanwhile arms it
// again and its slot is dropped in turn.
func (h *Hasher) pwDropIdle() {
	idle := time.Since(time.Unix(0, h.lastRelease.Load()))
	if idle < h.keep {
		h.dropTimer.Reset(h.keep - idle)
		return
	}
	h.dropArmed.Store(false)
	for _, s := range h.all {
		if !s.mu.TryLock() {
			continue // computing: its release arms the timer again
		}
		if s.mem.Size() > 0 {
			s.mem = argon2.Memory{}
			h.dropped.Add(1)
		}
		s.mu.Unlock()
	}
}

// pwMemory is the working memory of a computation with p in slot: the
// slot's own, which grows once to h's parameters and is reused after that;
// a stored hash made with more memory than h's gets memory of its own for
// the one computation, so a slot never keeps more than h.params needs.
func (h *Hasher) pwMemory(slot *pwSlot, p Params) *argon2.Memory {
	if p.Memory > h.params.Memory {
		return new(argon2.Memory)
	}
	return &slot.mem
}

func pwArgon2id(mem *argon2.Memory, password, salt []byte, p Params) []byte {
	return mem.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// pwPHC is a parsed argon2id PHC string. params.SaltLen and params.KeyLen
// are the lengths of salt and key.
type pwPHC struct {
	params Params
	salt   []byte
	key    []byte
}

// pwEncodePHC formats "$argon2id$v=19$m=M,t=T,p=P$salt$key".
func pwEncodePHC(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	var sb strings.Builder
	sb.Grow(40 + b64.EncodedLen(len(salt)) + b64.EncodedLen(len(key)))
	sb.WriteString("$" + pwAlgorithm + "$v=")
	sb.WriteString(strconv.Itoa(pwVersion))
	sb.WriteString("$m=")
	sb.WriteString(strconv.FormatUint(uint64(p.Memory), 10))
	sb.WriteString(",t=")
	sb.WriteString(strconv.FormatUint(uint64(p.Time), 10))
	sb.WriteString(",p=")
	sb.WriteString(strconv.FormatUint(uint64(p.Threads), 10))
	sb.WriteByte('$')
	sb.WriteString(b64.EncodeToString(salt))
	sb.WriteByte('$')
	sb.WriteString(b64.EncodeToString(key))
	return sb.String()
}

// pwParsePHC parses exactly the form pwEncodePHC writes: algorithm
// argon2id, version 19, parameters m, t, p in that order as canonical
// decimals (no sign, no leading zeros), no keyid or data parameters, salt
// and key in unpadded standard base64 with zero trailing bits, everything
// within the sanity bounds. Anything else is an error, so every string it
// accepts re-encodes to itself. Error texts never quote salt or key.
func pwParsePHC(s string) (pwPHC, error) {
	if len(s) > pwMaxPHCLen {
		return pwPHC{}, fmt.Errorf("longer than %d bytes", pwMaxPHCLen)
	}
	parts := strings.Split(s, "$")
	if len(parts) < 2 || parts[0] != "" {
		return pwPHC{}, errors.New("not a PHC string")
	}
	if parts[1] != pwAlgorithm {
		if pwIsPHCIdent(parts[1]) {
			return pwPHC{}, fmt.Errorf("unsupported algorithm %q", parts[1])
		}
		return pwPHC{}, errors.New("unsupported algorithm")
	}
	if len(parts) != 6 {
		return pwPHC{}, fmt.Errorf("%d fields, want 6", len(parts))
	}
	version, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return pwPHC{}, errors.New("missing version")
	}
	if v, err := pwParseDecimal(version); err != nil || v != pwVersion {
		return pwPHC{}, errors.New("unsupported version")
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return pwPHC{}, errors.New("parameters: want m, t, p")
	}
	var m, t, threads uint64
	for i, f := range []struct {
		name string
		dst  *uint64
		max  uint64
	}{{"m", &m, pwMaxMemory}, {"t", &t, pwMaxTime}, {"p", &threads, 255}} {
		val, ok := strings.CutPrefix(fields[i], f.name+"=")
		if !ok {
			return pwPHC{}, errors.New("parameters: want m, t, p")
		}
		n, err := pwParseDecimal(val)
		if err != nil {
			return pwPHC{}, fmt.Errorf("parameter %s: %w", f.name, err)
		}
		if n > f.max {
			return pwPHC{}, fmt.Errorf("parameter %s above %d", f.name, f.max)
		}
		*f.dst = n
	}
	p.Memory, p.Time, p.Threads = uint32(m), uint32(t), uint8(threads)
	salt, err := pwDecodeB64(parts[4])
	if err != nil {
		return pwPHC{}, fmt.Errorf("salt: %w", err)
	}
	key, err := pwDecodeB64(parts[5])
	if err != nil {
		return pwPHC{}, fmt.Errorf("hash: %w", err)
	}
	// #nosec G115 -- both lengths are below pwMaxPHCLen (512 bytes), checked above.
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.pwValidate(); err != nil {
		return pwPHC{}, err
	}
	return pwPHC{params: p, salt: salt, key: key}, nil
}

// pwIsPHCIdent reports whether s looks like a PHC algorithm identifier
// (safe to quote in an error).
func pwIsPHCIdent(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// pwParseDecimal parses a canonical decimal: digits only, no leading zero
// (except "0" itself), at most 10 digits.
func pwParseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 {
		return 0, errors.New("not a decimal")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero")
	}
	var n uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal")
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

// pwDecodeB64 decodes unpadded standard base64 strictly. The decoder
// itself skips '\r' and '\n', so the alphabet is checked first: a string
// that carries them is not the one we stored.
func pwDecodeB64(s string) ([]byte, error) {
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return nil, errors.New("not unpadded standard base64")
		}
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not unpadded standard base64")
	}
	return b, nil
}
