package vault

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// UserFromRequest returns the authenticated user of r; nil means
	// token.UserFromRequest (the handler sits behind token.Middleware). Its
	// error is answered as is (an *autherr.Error such as UNAUTHORIZED); a
	// nil user with a nil error is answered UNAUTHORIZED.
	UserFromRequest func(*http.Request) (uuid.UUID, error)
	Logger          *slog.Logger // nil: the service's logger
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when finding the client's IP for the audit row; none by default.
	TrustedProxies []netip.Prefix
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves api.md's Encryption vault section; mount it under
// /api/v1/me/encryption-vault with http.StripPrefix.
type Handler struct{ mux *web.Mux }

// Routes lists the patterns the handler serves, relative to its mount point.
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type vaultHandler struct {
	svc  *Service
	opts HandlerOptions
}

// NewHandler returns the HTTP handler of svc. Every answer carries
// Cache-Control: no-store (they can hold key material).
func NewHandler(svc *Service, opts HandlerOptions) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("vault: NewHandler: nil *Service")
	}
	if opts.UserFromRequest == nil {
		opts.UserFromRequest = token.UserFromRequest
	}
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	v := &vaultHandler{svc: svc, opts: opts}
	m := web.NewMux(autherr.Writer{Logger: opts.Logger, Observe: opts.Observe})
	m.Handle("POST /init", v.init, web.NoStore)
	m.Handle("GET /key", v.key, web.NoStore)
	m.Handle("POST /rotate", v.rotate, web.NoStore)
	m.Handle("GET /status", web.Endpoint(http.StatusOK, v.status), web.NoStore)
	m.Handle("POST /recovery-wrap", v.setRecovery, web.NoStore)
	m.Handle("DELETE /recovery-wrap", v.clearRecovery, web.NoStore)
	m.Handle("POST /zero-knowledge", v.zeroKnowledge, web.NoStore)
	return &Handler{mux: m}, nil
}

func (v *vaultHandler) user(r *http.Request) (uuid.UUID, error) {
	id, err := v.opts.UserFromRequest(r)
	if err != nil {
		return uuid.Nil, err
	}
	if id == uuid.Nil {
		return uuid.Nil, ErrNoUser
	}
	return id, nil
}

func (v *vaultHandler) client(r *http.Request) Client {
	return Client{IP: web.ClientIP(r, v.opts.TrustedProxies), UserAgent: web.UserAgent(r)}
}

// begin authenticates r and reads its optional body into body (nil: no
// body expected). A refused body is audited under action.
func (v *vaultHandler) begin(w http.ResponseWriter, r *http.Request, action Action, body any) (uuid.UUID, Client, error) {
	id, err := v.user(r)
	if err != nil {
		return uuid.Nil, Client{}, err
	}
	c := v.client(r)
	if body == nil {
		body = &struct{}{}
	}
	decode := web.DecodeOptional
	if _, ok := body.(*struct{}); !ok {
		decode = web.Decode
	}
	if err := decode(w, r, body); err != nil {
		v.svc.auditFailure(r.Context(), id, action, c, err)
		return uuid.Nil, Client{}, err
	}
	return id, c, nil
}

func (v *vaultHandler) writeKey(w http.ResponseWriter, k Key) error {
	defer k.Wipe()
	return web.JSON(w, http.StatusOK, k)
}

func (v *vaultHandler) init(w http.ResponseWriter, r *http.Request) error {
	id, c, err := v.begin(w, r, ActionInit, nil)
	if err != nil {
		return err
	}
	k, err := v.svc.Init(r.Context(), id, c)
	if err != nil {
		return err
	}
	return v.writeKey(w, k)
}

func (v *vaultHandler) key(w http.ResponseWriter, r *http.Request) error {
	id, err := v.user(r)
	if err != nil {
		return err
	}
	k, err := v.svc.Key(r.Context(), id, v.client(r))
	if err != nil {
		return err
	}
	return v.writeKey(w, k)
}

func (v *vaultHandler) rotate(w http.ResponseWriter, r *http.Request) error {
	id, c, err := v.begin(w, r, ActionRotate, nil)
	if err != nil {
		return err
	}
	k, err := v.svc.Rotate(r.Context(), id, c)
	if err != nil {
		return err
	}
	return v.writeKey(w, k)
}

func (v *vaultHandler) status(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	id, err := v.user(r)
	if err != nil {
		return nil, err
	}
	return v.svc.Status(r.Context(), id)
}

// recoveryRequest carries base64 text, decoded in Validate so that bad
// base64 is VALIDATION_FAILED naming the field.
type recoveryRequest struct {
	RecoveryWrappedMK string `json:"recoveryWrappedMk"`
	RecoveryIV        string `json:"recoveryIv"`
	wrapped, iv       []byte
}

func (q *recoveryRequest) Validate() error {
	var errW, errIV error
	q.wrapped, errW = base64.StdEncoding.DecodeString(q.RecoveryWrappedMK)
	q.iv, errIV = base64.StdEncoding.DecodeString(q.RecoveryIV)
	if errW != nil {
		q.wrapped = nil
	}
	if errIV != nil {
		q.iv = nil
	}
	return validateRecovery(q.wrapped, q.iv)
}

func (v *vaultHandler) setRecovery(w http.ResponseWriter, r *http.Request) error {
	var req recoveryRequest
	id, c, err := v.begin(w, r, ActionRecoverySet, &req)
	if err != nil {
		return err
	}
	st, err := v.svc.SetRecoveryWrap(r.Context(), id, req.wrapped, req.iv, c)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, st)
}

func (v *vaultHandler) clearRecovery(w http.ResponseWriter, r *http.Request) error {
	id, c, err := v.begin(w, r, ActionRecoveryClear, nil)
	if err != nil {
		return err
	}
	st, err := v.svc.ClearRecoveryWrap(r.Context(), id, c)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, st)
}

type zkRequest struct {
	Enable    *bool  `json:"enable"`
	MasterKey string `json:"masterKey"`
	key       []byte
}

// Validate decodes masterKey (required, exactly 32 bytes, when disabling).
// The JSON text of the key cannot be wiped (Go strings are immutable); the
// decoded bytes are, by the service.
func (q *zkRequest) Validate() error {
	if q.Enable == nil {
		return invalid(map[string]string{"enable": "required"})
	}
	if *q.Enable {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(q.MasterKey)
	if err != nil || len(key) != MasterKeySize {
		clear(key)
		return invalid(map[string]string{"masterKey": "must be base64 of exactly 32 bytes"})
	}
	q.key = key
	return nil
}

func (v *vaultHandler) zeroKnowledge(w http.ResponseWriter, r *http.Request) error {
	var req zkRequest
	id, c, err := v.begin(w, r, ActionZeroKnowledge, &req)
	if err != nil {
		return err
	}
	var st Status
	if *req.Enable {
		st, err = v.svc.EnableZeroKnowledge(r.Context(), id, c)
	} else {
		st, err = v.svc.DisableZeroKnowledge(r.Context(), id, req.key, c)
	}
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, st)
}
