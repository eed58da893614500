package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	vw "github.com/descope/virtualwebauthn"
	"golang.org/x/sync/errgroup"

	"github.com/mana-how/mana-auth/internal/passkeytest"
)

const (
	// webauthnPrefix is where the passkey routes are mounted.
	webauthnPrefix = "/api/v1/auth/passkeys"
	// passkeyOptionsPerMinute is api.md's default limit of the two
	// options routes (registration and sign-in together) per client IP,
	// MANA_AUTH_PASSKEY_OPTIONS_RATE on the reference server (0 lifts it;
	// MANA_AUTH_IP_RATE does not cover it). Under the limit the options
	// beyond its burst answer 429 RATE_LIMITED, one unit freeing up every
	// 3 s; the seeding waits for those.
	passkeyOptionsPerMinute = 20
	// passkeySeedAttempts bounds the tries of one registration's options
	// while the options limit refuses them (3 s apart: 2 minutes).
	passkeySeedAttempts = 40
)

// passkeyLoginScenario signs in with passkeys the way the reference
// server's sign-in page does: the usernameless (discoverable credential)
// ceremony, options without an email, then the assertion of a software
// authenticator (virtualwebauthn) playing the browser and the
// authenticator. Each slot owns one credential, registered through the
// API while seeding (on user slot mod -users), and alternates the two
// calls, labelled "options" and "verify": a verify answers the options
// its slot got last, and a slot whose options failed asks for options
// again. Every assertion counts the credential's signature counter up by
// one. A verified assertion starts a session, as a password login does
// (rows accumulate), without a password hash: the cost is the challenge
// round trip in PostgreSQL, an ECDSA P-256 verification and the session.
//
// The server limits the options to 20 a minute per IP by default (api.md),
// and the harness sends from one IP: run the server with
// MANA_AUTH_PASSKEY_OPTIONS_RATE=0 to measure, otherwise past that burst,
// less the registrations of the seeding, the options answer 429
// RATE_LIMITED, which the report counts as failures. The origin the authenticator reports is that of
// the access tokens' issuer, which the reference server sets to
// MANA_AUTH_BASE_URL, its WebAuthn origin.
func passkeyLoginScenario() Scenario {
	return Scenario{
		Name: "passkey-login",
		Help: "POST /api/v1/auth/passkeys/authenticate/options, then /verify: usernameless, a software passkey per slot (server with MANA_AUTH_PASSKEY_OPTIONS_RATE=0)",
		Prepare: func(ctx context.Context, env *Env) (Source, error) {
			slots, err := seedPasskeys(ctx, env)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(env.status, "note: unless the server runs with MANA_AUTH_PASSKEY_OPTIONS_RATE=0, it answers %d passkey options a minute per IP and 429 RATE_LIMITED past them\n",
				passkeyOptionsPerMinute)
			return SourceFunc(func(slot int) Call { return slots[slot].next() }), nil
		},
	}
}

// passkeySlot is one slot's authenticator with its credential, and the
// sign-in ceremony it is in.
type passkeySlot struct {
	rp   vw.RelyingParty // the RP ID it signs for and the origin the browser reports
	auth vw.Authenticator
	cred vw.Credential // with the signature counter
	// challengeID and options are those of the last successful options
	// answer, until its verify is sent; challengeID "": ask for options.
	challengeID string
	options     vw.AssertionOptions
}

// next is the slot's next call: options, or the verify of the options it
// holds. A verify spends them whatever its answer, so a failed or lost
// verify is followed by options, never by a second try of a challenge.
func (s *passkeySlot) next() Call {
	if s.challengeID == "" {
		return Call{Kind: "options", Method: http.MethodPost, Path: webauthnPrefix + "/authenticate/options",
			Body: []byte(`{}`), Want: http.StatusOK, After: s.takeOptions}
	}
	s.cred.Counter++
	credential := vw.CreateAssertionResponse(s.rp, s.auth, s.cred, s.options)
	body, err := json.Marshal(map[string]any{"challengeId": s.challengeID, "credential": json.RawMessage(credential)})
	if err != nil {
		panic(err) // a string and the authenticator's own JSON
	}
	s.challengeID, s.options = "", vw.AssertionOptions{}
	return Call{Kind: "verify", Method: http.MethodPost, Path: webauthnPrefix + "/authenticate/verify",
		Body: body, Want: http.StatusOK}
}

// takeOptions keeps the ceremony of a successful options answer for the
// slot's verify. Anything else leaves the slot asking for options; a 200
// whose options the authenticator cannot read would show as a run
// without verifies.
func (s *passkeySlot) takeOptions(status int, body []byte) {
	if status != http.StatusOK {
		return
	}
	var c passkeyCeremony
	if json.Unmarshal(body, &c) != nil || c.ChallengeID == "" {
		return
	}
	o, err := vw.ParseAssertionOptions(string(c.Options))
	if err != nil {
		return
	}
	s.challengeID, s.options = c.ChallengeID, *o
}

// passkeyCeremony is an options answer.
type passkeyCeremony struct {
	ChallengeID string          `json:"challengeId"`
	Options     json.RawMessage `json:"options"`
}

// seedPasskeys registers one credential for each slot, slot i on user
// i mod -users with the session its registration started (registering
// needs a session signed in within 10 minutes).
func seedPasskeys(ctx context.Context, env *Env) ([]*passkeySlot, error) {
	var capability struct {
		Available bool `json:"available"`
	}
	if err := env.api.do(ctx, http.MethodGet, webauthnPrefix+"/capability", "", nil, http.StatusOK, &capability); err != nil {
		return nil, err
	}
	if !capability.Available {
		return nil, errors.New("the server has passkeys off (GET " + webauthnPrefix + "/capability: available false): it offers them when MANA_AUTH_BASE_URL is https, or http on localhost (the default on a loopback MANA_AUTH_ADDR)")
	}
	accts, err := env.Users(ctx)
	if err != nil {
		return nil, err
	}
	origin, err := issuerOrigin(accts[0].First.Access)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.status, "registering %d passkeys through POST %s/register/options and /register/verify (origin %s)\n",
		env.slots, webauthnPrefix, origin)
	if env.slots > passkeyOptionsPerMinute {
		fmt.Fprintf(env.status, "the server answers %d passkey options a minute per IP: the registrations past them take %v each\n",
			passkeyOptionsPerMinute, time.Minute/passkeyOptionsPerMinute)
	}
	slots := make([]*passkeySlot, env.slots)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(env.seedC)
	for i := range slots {
		a := accts[i%len(accts)]
		g.Go(func() error {
			s, err := registerPasskey(gctx, env.api, a.First.Access, origin, fmt.Sprintf("loadtest slot %d", i))
			slots[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed passkeys: %w", err)
	}
	return slots, nil
}

// registerPasskey adds a passkey to the account bearer signs in to: a
// new authenticator, whose user handle is the account's id from the
// creation options, with one fresh credential. Options refused by the
// options limit are asked for again when the next unit frees up.
func registerPasskey(ctx context.Context, a *api, bearer, origin, name string) (*passkeySlot, error) {
	var c passkeyCeremony
	for attempt := 1; ; attempt++ {
		err := a.do(ctx, http.MethodPost, webauthnPrefix+"/register/options", bearer, nil, http.StatusOK, &c)
		if err == nil {
			break
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Code != "RATE_LIMITED" || attempt == passkeySeedAttempts {
			return nil, err
		}
		select {
		case <-time.After(time.Minute / passkeyOptionsPerMinute):
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		}
	}
	o, err := vw.ParseAttestationOptions(string(c.Options))
	if err != nil {
		return nil, fmt.Errorf("POST %s/register/options: creation options: %w", webauthnPrefix, err)
	}
	s := &passkeySlot{
		rp:   vw.RelyingParty{ID: o.RelyingPartyID, Name: o.RelyingPartyName, Origin: origin},
		auth: vw.NewAuthenticatorWithOptions(vw.AuthenticatorOptions{UserHandle: []byte(o.UserID)}),
		cred: passkeytest.Credential(),
	}
	credential := vw.CreateAttestationResponse(s.rp, s.auth, s.cred, *o)
	if err := a.do(ctx, http.MethodPost, webauthnPrefix+"/register/verify", bearer,
		map[string]any{"challengeId": c.ChallengeID, "credential": json.RawMessage(credential), "name": name},
		http.StatusCreated, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// issuerOrigin is the origin (scheme://host[:port]) of the iss claim of
// an access token, read without checking the signature: the reference
// server issues its tokens as MANA_AUTH_BASE_URL, whose origin is the
// one its WebAuthn ceremonies must come from.
func issuerOrigin(access string) (string, error) {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT: cannot read the server's origin from its issuer")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("the access token's claims: %w", err)
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", fmt.Errorf("the access token's claims: %w", err)
	}
	u, err := url.Parse(claims.Iss)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("the access token's issuer %q is not the server's base URL: cannot tell the WebAuthn origin", claims.Iss)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}
