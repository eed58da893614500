package spaces

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/token"
	"github.com/mana-how/mana-auth/web"
)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Tokens verifies the Bearer access token every route takes (a
	// *token.Tokens, or a *token.Checker on a host that only verifies).
	// Required.
	Tokens token.Verifier
	Logger *slog.Logger // nil: the service's logger
	// Observe is passed to the error writer (metrics).
	Observe func(e *autherr.Error, status int)
}

// Handler serves api.md's Organizations section.
type Handler struct{ mux *web.Mux }

// Routes lists the patterns the handler serves, relative to its mount point.
func (h *Handler) Routes() []string { return h.mux.Routes() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// NewHandler returns the HTTP handler of svc; mount it under /api/v1/guilds
// with http.StripPrefix. Every route takes the Bearer access token. Path
// ids that are not UUIDs answer 404 NOT_FOUND without a query; so does a
// space the caller does not belong to, whatever the route. The collection
// root is "/{$}": a host that also wants to answer the prefix without its
// trailing slash rewrites that path to "/" (StripPrefix leaves it empty).
func NewHandler(svc *Service, opts HandlerOptions) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("spaces: NewHandler: nil *Service")
	}
	if opts.Tokens == nil {
		return nil, errors.New("spaces: HandlerOptions.Tokens is required")
	}
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	errs := autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}
	m := web.NewMux(errs)
	bearer := token.MiddlewareWith(opts.Tokens, errs)
	a := &spacesHandler{svc: svc}
	handle := func(pattern string, fn web.HandlerFunc) { m.Handle(pattern, fn, bearer) }
	handle("POST /{$}", web.Endpoint(http.StatusCreated, a.create))
	handle("GET /{$}", web.Endpoint(http.StatusOK, a.list))
	handle("GET /{id}", web.Endpoint(http.StatusOK, a.get))
	handle("PATCH /{id}", web.Endpoint(http.StatusOK, a.rename))
	handle("DELETE /{id}", web.Endpoint(http.StatusNoContent, a.delete))
	handle("GET /{id}/members", web.Endpoint(http.StatusOK, a.members))
	handle("PATCH /{id}/members/{userId}", web.Endpoint(http.StatusOK, a.setRole))
	handle("DELETE /{id}/members/{userId}", web.Endpoint(http.StatusNoContent, a.removeMember))
	handle("POST /{id}/invitations", web.Endpoint(http.StatusCreated, a.invite))
	handle("GET /{id}/invitations", web.Endpoint(http.StatusOK, a.invitations))
	handle("DELETE /{id}/invitations/{invitationId}", web.Endpoint(http.StatusNoContent, a.revokeInvitation))
	handle("POST /invitations/{token}/accept", web.Endpoint(http.StatusOK, a.accept))
	m.NotFoundElsewhere()
	return &Handler{mux: m}, nil
}

type spacesHandler struct {
	svc *Service
}

// pathIDs parses the named path values as UUIDs; any that is not one
// answers NOT_FOUND, like an id that names nothing.
func pathIDs(r *http.Request, names ...string) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, len(names))
	for i, n := range names {
		v := r.PathValue(n)
		id, err := uuid.Parse(v)
		if err != nil || len(v) != 36 {
			return nil, autherr.New(autherr.NotFound, "not found")
		}
		ids[i] = id
	}
	return ids, nil
}

// caller returns the authenticated user and the path ids.
func caller(r *http.Request, names ...string) (uuid.UUID, []uuid.UUID, error) {
	uid, err := token.UserFromRequest(r)
	if err != nil {
		return uuid.Nil, nil, err
	}
	ids, err := pathIDs(r, names...)
	return uid, ids, err
}

type guildBody struct {
	Guild Space `json:"guild"`
}

type createIn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (a *spacesHandler) create(_ http.ResponseWriter, r *http.Request, in createIn) (any, error) {
	uid, _, err := caller(r)
	if err != nil {
		return nil, err
	}
	sp, err := a.svc.CreateSpace(r.Context(), uid, in.Name, Type(in.Type))
	return guildBody{sp}, err
}

func (a *spacesHandler) list(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, _, err := caller(r)
	if err != nil {
		return nil, err
	}
	spaces, err := a.svc.ListSpaces(r.Context(), uid)
	if spaces == nil {
		spaces = []Space{}
	}
	return map[string]any{"guilds": spaces}, err
}

func (a *spacesHandler) get(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, ids, err := caller(r, "id")
	if err != nil {
		return nil, err
	}
	sp, err := a.svc.GetSpace(r.Context(), uid, ids[0])
	return guildBody{sp}, err
}

type renameIn struct {
	Name string `json:"name"`
}

func (a *spacesHandler) rename(_ http.ResponseWriter, r *http.Request, in renameIn) (any, error) {
	uid, ids, err := caller(r, "id")
	if err != nil {
		return nil, err
	}
	sp, err := a.svc.RenameSpace(r.Context(), uid, ids[0], in.Name)
	return guildBody{sp}, err
}

func (a *spacesHandler) delete(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, ids, err := caller(r, "id")
	if err != nil {
		return nil, err
	}
	return nil, a.svc.DeleteSpace(r.Context(), uid, ids[0])
}

func (a *spacesHandler) members(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, ids, err := caller(r, "id")
	if err != nil {
		return nil, err
	}
	members, err := a.svc.Members(r.Context(), uid, ids[0])
	return map[string]any{"members": members}, err
}

type roleIn struct {
	Role string `json:"role"`
}

func (a *spacesHandler) setRole(_ http.ResponseWriter, r *http.Request, in roleIn) (any, error) {
	uid, ids, err := caller(r, "id", "userId")
	if err != nil {
		return nil, err
	}
	m, err := a.svc.SetRole(r.Context(), uid, ids[0], ids[1], Role(in.Role))
	return map[string]any{"member": m}, err
}

func (a *spacesHandler) removeMember(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, ids, err := caller(r, "id", "userId")
	if err != nil {
		return nil, err
	}
	return nil, a.svc.RemoveMember(r.Context(), uid, ids[0], ids[1])
}

type inviteIn struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

func (a *spacesHandler) invite(_ http.ResponseWriter, r *http.Request, in inviteIn) (any, error) {
	uid, ids, err := caller(r, "id")
	if err != nil {
		return nil, err
	}
	inv, err := a.svc.Invite(r.Context(), uid, ids[0], in.Email, Role(in.Role))
	return map[string]any{"invitation": inv}, err
}

func (a *spacesHandler) invitations(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, ids, err := caller(r, "id")
	if err != nil {
		return nil, err
	}
	invs, err := a.svc.ListInvitations(r.Context(), uid, ids[0])
	if invs == nil {
		invs = []Invitation{}
	}
	return map[string]any{"invitations": invs}, err
}

func (a *spacesHandler) revokeInvitation(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, ids, err := caller(r, "id", "invitationId")
	if err != nil {
		return nil, err
	}
	return nil, a.svc.RevokeInvitation(r.Context(), uid, ids[0], ids[1])
}

func (a *spacesHandler) accept(_ http.ResponseWriter, r *http.Request, _ web.NoBody) (any, error) {
	uid, _, err := caller(r)
	if err != nil {
		return nil, err
	}
	sp, err := a.svc.AcceptInvitation(r.Context(), uid, r.PathValue("token"))
	return map[string]any{"guild": sp, "role": sp.Role}, err
}
