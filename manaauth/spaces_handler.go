package manaauth

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

type spacesHandler struct {
	svc *Service
}

// NewSpacesHandler returns the HTTP handler of api.md's Organizations
// section; mount it under /api/v1/guilds with http.StripPrefix. Every
// route takes the Bearer access token. Path ids that are not UUIDs answer
// 404 NOT_FOUND without a query; so does a space the caller does not
// belong to, whatever the route. The collection root is "/{$}": a host
// that also wants to answer the prefix without its trailing slash rewrites
// that path to "/" (StripPrefix leaves it empty). Of opts only Logger and
// Observe apply.
func NewSpacesHandler(svc *Service, opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = svc.logger
	}
	errs := autherr.Writer{Logger: opts.Logger, Observe: opts.Observe}
	a := &spacesHandler{svc: svc}
	h := &Handler{mux: http.NewServeMux()}
	bearer := MiddlewareWith(svc.cfg.Tokens, errs)
	handle := func(pattern string, fn web.HandlerFunc) {
		h.mux.Handle(pattern, bearer(web.Handle(errs, fn)))
		h.routes = append(h.routes, pattern)
	}
	handle("POST /{$}", a.create)
	handle("GET /{$}", a.list)
	handle("GET /{id}", a.get)
	handle("PATCH /{id}", a.rename)
	handle("DELETE /{id}", a.delete)
	handle("GET /{id}/members", a.members)
	handle("PATCH /{id}/members/{userId}", a.setRole)
	handle("DELETE /{id}/members/{userId}", a.removeMember)
	handle("POST /{id}/invitations", a.invite)
	handle("GET /{id}/invitations", a.invitations)
	handle("DELETE /{id}/invitations/{invitationId}", a.revokeInvitation)
	handle("POST /invitations/{token}/accept", a.accept)
	// Any other path under the mount point answers the envelope, not the
	// mux's plain-text 404.
	h.mux.Handle("/", web.Handle(errs, func(http.ResponseWriter, *http.Request) error {
		return autherr.New(autherr.NotFound, "no such route")
	}))
	return h
}

// spacePathIDs parses the named path values as UUIDs; any that is not one
// answers NOT_FOUND, like an id that names nothing.
func spacePathIDs(r *http.Request, names ...string) ([]uuid.UUID, error) {
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
func (a *spacesHandler) caller(r *http.Request, names ...string) (uuid.UUID, []uuid.UUID, error) {
	uid, _, err := claims(r)
	if err != nil {
		return uuid.Nil, nil, err
	}
	ids, err := spacePathIDs(r, names...)
	return uid, ids, err
}

type guildBody struct {
	Guild Space `json:"guild"`
}

func (a *spacesHandler) create(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := a.caller(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	sp, err := a.svc.CreateSpace(r.Context(), uid, in.Name, SpaceType(in.Type))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, guildBody{sp})
}

func (a *spacesHandler) list(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := a.caller(r)
	if err != nil {
		return err
	}
	spaces, err := a.svc.ListSpaces(r.Context(), uid)
	if err != nil {
		return err
	}
	if spaces == nil {
		spaces = []Space{}
	}
	return web.JSON(w, http.StatusOK, map[string]any{"guilds": spaces})
}

func (a *spacesHandler) get(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id")
	if err != nil {
		return err
	}
	sp, err := a.svc.GetSpace(r.Context(), uid, ids[0])
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, guildBody{sp})
}

func (a *spacesHandler) rename(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	sp, err := a.svc.RenameSpace(r.Context(), uid, ids[0], in.Name)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, guildBody{sp})
}

func (a *spacesHandler) delete(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id")
	if err != nil {
		return err
	}
	if err := a.svc.DeleteSpace(r.Context(), uid, ids[0]); err != nil {
		return err
	}
	web.NoContent(w)
	return nil
}

func (a *spacesHandler) members(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id")
	if err != nil {
		return err
	}
	members, err := a.svc.Members(r.Context(), uid, ids[0])
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]any{"members": members})
}

func (a *spacesHandler) setRole(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id", "userId")
	if err != nil {
		return err
	}
	var in struct {
		Role string `json:"role"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	m, err := a.svc.SetRole(r.Context(), uid, ids[0], ids[1], Role(in.Role))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]any{"member": m})
}

func (a *spacesHandler) removeMember(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id", "userId")
	if err != nil {
		return err
	}
	if err := a.svc.RemoveMember(r.Context(), uid, ids[0], ids[1]); err != nil {
		return err
	}
	web.NoContent(w)
	return nil
}

func (a *spacesHandler) invite(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := web.Decode(w, r, &in); err != nil {
		return err
	}
	inv, err := a.svc.Invite(r.Context(), uid, ids[0], in.Email, Role(in.Role))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusCreated, map[string]any{"invitation": inv})
}

func (a *spacesHandler) invitations(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id")
	if err != nil {
		return err
	}
	invs, err := a.svc.ListInvitations(r.Context(), uid, ids[0])
	if err != nil {
		return err
	}
	if invs == nil {
		invs = []Invitation{}
	}
	return web.JSON(w, http.StatusOK, map[string]any{"invitations": invs})
}

func (a *spacesHandler) revokeInvitation(w http.ResponseWriter, r *http.Request) error {
	uid, ids, err := a.caller(r, "id", "invitationId")
	if err != nil {
		return err
	}
	if err := a.svc.RevokeInvitation(r.Context(), uid, ids[0], ids[1]); err != nil {
		return err
	}
	web.NoContent(w)
	return nil
}

func (a *spacesHandler) accept(w http.ResponseWriter, r *http.Request) error {
	uid, _, err := a.caller(r)
	if err != nil {
		return err
	}
	if err := web.DecodeOptional(w, r, &struct{}{}); err != nil {
		return err
	}
	sp, err := a.svc.AcceptInvitation(r.Context(), uid, r.PathValue("token"))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]any{"guild": sp, "role": sp.Role})
}
