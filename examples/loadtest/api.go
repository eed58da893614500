package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// api is the small client the harness seeds with: register, login, vault
// init — the same routes a real client calls.
type api struct {
	base string // target URL without a trailing slash
	hc   *http.Client
}

// apiError is a non-success answer: its status and the code of its error
// envelope.
type apiError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s answered %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// seedRetries is how often a seeding call answered 503 with Retry-After
// (the server still busy with an earlier run) is tried again.
const seedRetries = 5

// do sends in as JSON (nil: no body) and decodes a want answer into out
// (nil: discarded). A 503 with Retry-After is retried after the time it
// asks for (at most 5 s), up to seedRetries times.
func (a *api) do(ctx context.Context, method, path, bearer string, in any, want int, out any) error {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		retry, err := a.once(ctx, method, path, bearer, b, want, out)
		if retry <= 0 || attempt == seedRetries {
			return err
		}
		select {
		case <-time.After(min(retry, 5*time.Second)):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
}

// once sends one request; retry is the wait a 503 with Retry-After asks
// for (0 for any other answer).
func (a *api) once(ctx context.Context, method, path, bearer string, in []byte, want int, out any) (retry time.Duration, err error) {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		e := envelopeOf(b)
		err := &apiError{Method: method, Path: path, Status: resp.StatusCode, Code: e.Code, Message: e.Message}
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && resp.StatusCode == http.StatusServiceUnavailable {
			return time.Duration(max(secs, 1)) * time.Second, err
		}
		return 0, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return 0, nil
}

// envelope is api.md's error envelope (also inside /validate's 401).
type envelope struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// envelopeOf returns the error of an answer body; Code "-" when the body
// is not the envelope.
func envelopeOf(body []byte) envelope {
	var e struct {
		Error envelope `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return envelope{Code: "-", Message: strings.TrimSpace(string(body[:min(len(body), 200)]))}
	}
	return e.Error
}

// tokenPair is the answer of /login, /refresh and (without verification)
// /register.
type tokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	User         struct {
		ID string `json:"id"`
	} `json:"user"`
}

// Account is a seeded user.
type Account struct {
	Email, Password string
	// First is the session registration started.
	First *Session
}

// Session is one sign-in: its current access token and the head of its
// refresh-token chain. A session belongs to one slot at a time.
type Session struct {
	Account *Account
	Access  string
	Refresh string
}

// Env is what a scenario's Prepare gets: the seeding client and the run's
// sizes.
type Env struct {
	api    *api
	users  int // -users
	slots  int // -c
	seedC  int // registrations and logins in parallel
	runID  string
	status io.Writer // progress of the seeding

	mu       sync.Mutex
	accounts []*Account
}

// newRunID returns 8 random hex digits that keep the emails of one run
// apart from those of every other.
func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return hex.EncodeToString(b)
}

// Users registers -users accounts (once per run) and returns them, each
// with the session its registration started. The server must answer
// register with tokens, i.e. run with MANA_AUTH_REQUIRE_EMAIL_VERIFICATION
// =false, and not limit the harness's IP (MANA_AUTH_IP_RATE=0).
func (e *Env) Users(ctx context.Context) ([]*Account, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.accounts != nil {
		return e.accounts, nil
	}
	fmt.Fprintf(e.status, "seeding %d users through POST /api/v1/auth/register\n", e.users)
	accts := make([]*Account, e.users)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.seedC)
	for i := range accts {
		g.Go(func() error {
			a := &Account{Email: fmt.Sprintf("loadtest-%s-%d@example.com", e.runID, i), Password: "lt-" + newRunID() + newRunID() + "-pw"}
			var p tokenPair
			err := e.api.do(gctx, http.MethodPost, "/api/v1/auth/register", "",
				map[string]string{"email": a.Email, "password": a.Password, "name": "loadtest"}, http.StatusCreated, &p)
			if err != nil {
				return seedHint(err)
			}
			if p.AccessToken == "" || p.RefreshToken == "" {
				return errors.New("register answered without tokens: the server requires email verification; run it with MANA_AUTH_REQUIRE_EMAIL_VERIFICATION=false (the harness does not read verification mails)")
			}
			a.First = &Session{Account: a, Access: p.AccessToken, Refresh: p.RefreshToken}
			accts[i] = a
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed users: %w", err)
	}
	e.accounts = accts
	return accts, nil
}

// Sessions returns n sessions of their own: the users' first sessions,
// then one more login per session beyond -users (round robin over the
// users).
func (e *Env) Sessions(ctx context.Context, n int) ([]*Session, error) {
	accts, err := e.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Session, n)
	var more int
	for i := range out {
		if i < len(accts) {
			out[i] = accts[i].First
		} else {
			more++
		}
	}
	if more > 0 {
		fmt.Fprintf(e.status, "signing in %d more sessions through POST /api/v1/auth/login\n", more)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.seedC)
	for i := len(accts); i < n; i++ {
		a := accts[i%len(accts)]
		g.Go(func() error {
			s, err := e.login(gctx, a)
			out[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed sessions: %w", err)
	}
	return out, nil
}

func (e *Env) login(ctx context.Context, a *Account) (*Session, error) {
	var p tokenPair
	if err := e.api.do(ctx, http.MethodPost, "/api/v1/auth/login", "",
		map[string]string{"email": a.Email, "password": a.Password}, http.StatusOK, &p); err != nil {
		return nil, seedHint(err)
	}
	return &Session{Account: a, Access: p.AccessToken, Refresh: p.RefreshToken}, nil
}

// InitVaults creates the encryption vault of every user.
func (e *Env) InitVaults(ctx context.Context) error {
	accts, err := e.Users(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.status, "initialising %d vaults through POST /api/v1/me/encryption-vault/init\n", len(accts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.seedC)
	for _, a := range accts {
		g.Go(func() error {
			return e.api.do(gctx, http.MethodPost, "/api/v1/me/encryption-vault/init", a.First.Access, nil, http.StatusOK, nil)
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("seed vaults: %w", err)
	}
	return nil
}

// seedHint adds what to change on the server to the seeding errors that
// come from its configuration.
func seedHint(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Code {
	case "RATE_LIMITED":
		return fmt.Errorf("%w (run the server with MANA_AUTH_IP_RATE=0: the harness signs in from one IP)", err)
	case "EMAIL_NOT_VERIFIED":
		return fmt.Errorf("%w (run the server with MANA_AUTH_REQUIRE_EMAIL_VERIFICATION=false)", err)
	case "SIGNUP_LIMIT_REACHED":
		return fmt.Errorf("%w (unset MAX_DAILY_SIGNUPS on the server, or seed fewer -users)", err)
	}
	return err
}
