package grant

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// UserFromRequest returns the authenticated user of r; nil means
	// token.UserFromRequest (the handler sits behind token.Middleware). Its
	// error is answered as is (an *autherr.Error such as UNAUTHORIZED).
	UserFromRequest func(*http.Request) (uuid.UUID, error)
	Logger          *slog.Logger // nil: the issuer's logger
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding the client's IP for the security event; none by
	// default.
	TrustedProxies []netip.Prefix
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves api.md's POST /api/v1/me/ai-mission-grant. Its one route
// is "POST /" relative to its mount point; since the route is the mount
// point itself, it also answers the empty path that http.StripPrefix
// leaves for a request to exactly the prefix. Mount it with
//
//	mux.Handle("POST /api/v1/me/ai-mission-grant", authn(http.StripPrefix("/api/v1/me/ai-mission-grant", h)))
//
// (not with a trailing slash, which would make a subtree pattern).
type Handler struct {
	iss   *Issuer
	opts  HandlerOptions
	serve http.Handler
}

// NewHandler returns the HTTP handler of iss. Every answer carries
// Cache-Control: no-store.
func NewHandler(iss *Issuer, opts HandlerOptions) (*Handler, error) {
	if iss == nil {
		return nil, errors.New("grant: NewHandler: nil *Issuer")
	}
	if opts.UserFromRequest == nil {
		opts.UserFromRequest = token.UserFromRequest
	}
	if opts.Logger == nil {
		opts.Logger = iss.logger
	}
	h := &Handler{iss: iss, opts: opts}
	h.serve = web.NoStore(web.Handle(autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}, h.issue))
	return h, nil
}

// Routes lists the patterns the handler serves, relative to its mount
// point.
func (h *Handler) Routes() []string { return []string{"POST /"} }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve.ServeHTTP(w, r) }

// issueRequest is the body {missionId, ttlSeconds?}.
type issueRequest struct {
	MissionID  string          `json:"missionId"`
	TTLSeconds json.RawMessage `json:"ttlSeconds"`
	ttl        time.Duration   // 0: default
}

// Validate checks missionId and reads ttlSeconds: absent or null means the
// default; any integer is clamped to [MinTTL, MaxTTL] (so 0 and negative
// numbers mean MinTTL, huge ones MaxTTL); a fraction or a non-number is
// VALIDATION_FAILED.
func (q *issueRequest) Validate() error {
	fields := map[string]string{}
	if err := ValidateMissionID(q.MissionID); err != nil {
		fields["missionId"] = err.Error()
	}
	if raw := bytes.TrimSpace(q.TTLSeconds); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		secs, ok := ttlSeconds(raw)
		if ok {
			q.ttl = time.Duration(secs) * time.Second
		} else {
			fields["ttlSeconds"] = "must be an integer number of seconds"
		}
	}
	if len(fields) > 0 {
		return web.Invalid(fields)
	}
	return nil
}

// ttlSeconds reads a JSON number that is an integer and clamps it to the
// TTL bounds, in seconds.
func ttlSeconds(raw []byte) (int64, bool) {
	lo, hi := int64(MinTTL/time.Second), int64(MaxTTL/time.Second)
	if raw[0] == '"' {
		return 0, false // a string, even of digits, is not a number
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return min(max(n, lo), hi), true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	if math.IsNaN(f) || f != math.Trunc(f) {
		return 0, false
	}
	switch {
	case f <= float64(lo):
		return lo, true
	case f >= float64(hi):
		return hi, true
	}
	return int64(f), true
}

func (h *Handler) issue(w http.ResponseWriter, r *http.Request) error {
	if p := r.URL.Path; p != "" && p != "/" {
		return autherr.New(autherr.NotFound, "no such route")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return autherr.New(autherr.BadRequest, "method not allowed: use POST")
	}
	userID, err := h.opts.UserFromRequest(r)
	if err != nil {
		return err
	}
	if userID == uuid.Nil {
		return autherr.New(autherr.Unauthorized, "")
	}
	if !h.iss.Configured() {
		return autherr.New(autherr.GrantNotConfigured, "")
	}
	var req issueRequest
	if err := web.Decode(w, r, &req); err != nil {
		return err
	}
	g, err := h.iss.Issue(r.Context(), Request{UserID: userID, MissionID: req.MissionID, TTL: req.ttl,
		IP: web.ClientIP(r, h.opts.TrustedProxies), UserAgent: web.UserAgent(r)})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, g)
}
