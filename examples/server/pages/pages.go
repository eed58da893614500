// Package pages serves the reference server's hosted pages (api.md,
// "Hosted pages"): sign in, sign up, the pages the links in mails land on,
// and the account page. They are static HTML, one stylesheet and a few ES
// modules embedded in the binary; everything a page does, it does through
// the JSON API of the same origin, so the pages hold no secret and need no
// templating.
//
// The session: sign-in posts to /api/v1/auth/login, which sets the HttpOnly
// session cookie and the readable CSRF cookie. A page that needs the API
// as the user trades the cookie for an access token at
// /api/v1/auth/session-to-token (with the CSRF cookie's value in the
// X-CSRF-Token header, a signed double-submit cookie), keeps the token in
// memory only, and trades again when it expires. Sign-out posts to
// /api/v1/auth/logout the same way.
//
// Every answer carries a strict Content-Security-Policy (script, style,
// images and fetches only from the same origin, no inline script or style,
// no framing, no <base>, forms only to the same origin) and refuses to be
// framed or opened by another origin's window.
package pages

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

//go:embed site
var site embed.FS

// CSP is the Content-Security-Policy of every page and asset. img-src
// allows data: URLs for the QR code of the MFA enrolment, which the API
// sends as base64 PNG.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// pageFiles maps each page's path to its file under site/. The mail links
// of package mail land on verify-email, reset-password,
// confirm-email-change and accept-invitation.
var pageFiles = map[string]string{
	"/":                     "index.html",
	"/signup":               "signup.html",
	"/verify-email":         "verify-email.html",
	"/forgot-password":      "forgot-password.html",
	"/reset-password":       "reset-password.html",
	"/confirm-email-change": "confirm-email-change.html",
	"/accept-invitation":    "accept-invitation.html",
	"/account":              "account.html",
}

// AssetsPattern serves the stylesheet and the modules.
const AssetsPattern = "GET /assets/{name}"

// Options configure New.
type Options struct {
	// Errors answers unknown assets with the JSON envelope (404
	// NOT_FOUND), like every other unknown path of the server.
	Errors autherr.Writer
	// HSTS adds Strict-Transport-Security (two years) to every answer;
	// set it when the public base URL is https.
	HSTS bool
}

// Handler serves the pages. Mount each of Routes on the host's mux.
type Handler struct {
	mux    *http.ServeMux
	routes []string
	files  map[string]file // by name under site/ ("index.html", "assets/app.css")
	opts   Options
}

type file struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are the types of the embedded files, by extension; a file
// of another extension makes New fail, so nothing is served as a guess.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// New reads the embedded site and returns its handler.
func New(opts Options) (*Handler, error) {
	h := &Handler{mux: http.NewServeMux(), files: map[string]file{}, opts: opts}
	sub, err := fs.Sub(site, "site")
	if err != nil {
		return nil, fmt.Errorf("pages: %w", err)
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("pages: %s: no content type for its extension", name)
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.files[name] = file{body: b, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pages: read the embedded site: %w", err)
	}
	for p, name := range pageFiles {
		if _, ok := h.files[name]; !ok {
			return nil, fmt.Errorf("pages: %s has no file %s", p, name)
		}
		pattern := "GET " + p
		if p == "/" {
			pattern = "GET /{$}" // the root alone, not the GET subtree
		}
		h.mux.Handle(pattern, h.serveFile(name, false))
		h.routes = append(h.routes, pattern)
	}
	h.mux.Handle(AssetsPattern, web.Handle(opts.Errors, func(w http.ResponseWriter, r *http.Request) error {
		name := "assets/" + r.PathValue("name")
		if _, ok := h.files[name]; !ok {
			return autherr.New(autherr.NotFound, "no such asset")
		}
		h.serveFile(name, true).ServeHTTP(w, r)
		return nil
	}))
	h.routes = append(h.routes, AssetsPattern)
	return h, nil
}

// Routes lists the patterns the handler serves: "GET /{$}" for the sign-in
// page at the root alone, one per page, and AssetsPattern.
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// serveFile answers one embedded file with the page headers. Pages are
// never stored (they are where tokens from mail links arrive); assets are
// revalidated by their ETag.
func (h *Handler) serveFile(name string, asset bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := h.files[name]
		hd := w.Header()
		SetHeaders(hd, h.opts.HSTS)
		hd.Set("Content-Type", f.contentType)
		if asset {
			hd.Set("Cache-Control", "no-cache")
			hd.Set("ETag", f.etag)
		} else {
			hd.Set("Cache-Control", "no-store")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}

// SetHeaders sets the security headers of the pages on h, on top of the
// server-wide ones (web.SecurityHeaders: nosniff, Referrer-Policy:
// no-referrer — the pages' URLs carry tokens from mail links): the CSP,
// X-Frame-Options for browsers that predate frame-ancestors, and the
// cross-origin isolation headers; Strict-Transport-Security when hsts.
func SetHeaders(h http.Header, hsts bool) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if hsts {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}
}
