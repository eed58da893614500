// Package web is the HTTP plumbing every mana-auth handler shares: request
// ids, the adapter that turns a returned error into the autherr envelope,
// the JSON decoder and encoder, security headers and the client address.
// It depends on autherr only.
//
// # Typical flow
//
// A package's handler is a set of func(w, r) error methods mounted through
// one adapter, behind the request-id and security-header middleware:
//
//	errs := autherr.Writer{Logger: logger}
//	mux := http.NewServeMux()
//	mux.Handle("POST /login", web.Handle(errs, h.login))
//	srv := web.RequestID(web.SecurityHeaders(mux))
//
//	func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
//		var req loginRequest // implements web.Validator
//		if err := web.Decode(w, r, &req); err != nil {
//			return err // 400 BAD_REQUEST, 400 VALIDATION_FAILED or 413
//		}
//		pair, err := h.svc.Login(r.Context(), req.Email, req.Password, web.ClientIP(r, h.trusted))
//		if err != nil {
//			return err // classified and answered by the adapter
//		}
//		return web.JSON(w, http.StatusOK, pair)
//	}
//
// # Decisions
//
// Request bodies: at most 64 KiB (413 PAYLOAD_TOO_LARGE beyond). The
// Content-Type must be application/json (any parameters; a charset must be
// utf-8) or absent; anything else is 400 BAD_REQUEST. Refusing form and
// text/plain bodies also means a cross-site HTML form cannot post to the
// API: browsers send application/json only after a CORS preflight. Unknown
// fields are ignored; malformed JSON, trailing data and wrong JSON types are
// 400 BAD_REQUEST; bad values are 400 VALIDATION_FAILED with details.fields
// (build it with Invalid). Decode requires a body; DecodeOptional treats an
// empty body or null as {}. A failed read of the body (the client reset or
// stalled) is BAD_REQUEST: it is never reported as our outage.
//
// Request ids: an incoming X-Request-Id is kept when it is 1 to 128
// printable ASCII characters without spaces, else replaced by 32 random hex
// digits; every answer carries it, the error envelope included.
//
// Client addresses: X-Forwarded-For is believed only from trusted proxies
// (MANA_AUTH_TRUSTED_PROXIES, parsed with ParsePrefixes) and walked from the
// right; by default it is ignored.
//
// Errors after the response started (a failed write) cannot change the
// answer any more; the adapter logs them through the same autherr.Writer.
package web
