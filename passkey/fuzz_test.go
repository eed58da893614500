package passkey

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	vw "github.com/descope/virtualwebauthn"
	"github.com/google/uuid"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

// FuzzSignInBody feeds arbitrary bodies to the parsing of POST
// /authenticate/verify: the shared decoder with the body's validation,
// then go-webauthn's parse of the credential. It must never panic; the
// decoder may only answer BAD_REQUEST, VALIDATION_FAILED or
// PAYLOAD_TOO_LARGE, and what it accepts must carry a challenge id the
// handler can parse without failing (it calls uuid.MustParse); a
// credential that does not parse is PASSKEY_VERIFICATION_FAILED, and one
// that does has a credential id (the key of its limits). Seeded with a
// real assertion of the software authenticator and its near misses.
func FuzzSignInBody(f *testing.F) {
	auth := vw.NewAuthenticatorWithOptions(vw.AuthenticatorOptions{UserHandle: []byte("0123456789abcdef")})
	cred := vw.NewCredential(vw.KeyTypeEC2)
	rp := vw.RelyingParty{ID: "app.test.example", Origin: "https://app.test.example"}
	challenge := make([]byte, 32)
	assertion := vw.CreateAssertionResponse(rp, auth, cred, vw.AssertionOptions{Challenge: challenge, RelyingPartyID: rp.ID})
	id := uuid.NewString()
	body := func(challengeID string, credential string) []byte {
		return []byte(`{"challengeId":"` + challengeID + `","credential":` + credential + `}`)
	}
	for _, seed := range [][]byte{
		body(id, assertion),
		body(id, `{"id":"","type":"public-key","response":{}}`),
		body(id, `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"authenticatorData":"","clientDataJSON":"","signature":""}}`),
		body(id, `"a string"`),
		body(id, `null`),
		body("{"+id+"}", assertion),
		body("urn:uuid:"+id, assertion),
		body(base64.RawURLEncoding.EncodeToString(challenge), assertion),
		[]byte(`{"challengeId":42,"credential":{}}`),
		[]byte(`{}`),
		[]byte(``),
		[]byte(`[`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := httptest.NewRequest(http.MethodPost, "/authenticate/verify", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		var in signInIn
		if err := web.Decode(httptest.NewRecorder(), req, &in); err != nil {
			switch code := autherr.CodeOf(err); code {
			case autherr.BadRequest, autherr.ValidationFailed, autherr.PayloadTooLarge:
			default:
				t.Fatalf("decode answered %s for %q", code, raw)
			}
			return
		}
		if _, err := uuid.Parse(in.ChallengeID); err != nil || len(in.ChallengeID) != 36 {
			t.Fatalf("accepted challenge id %q", in.ChallengeID)
		}
		if len(in.Credential) == 0 || !json.Valid(in.Credential) {
			t.Fatalf("accepted credential %q", in.Credential)
		}
		p, err := parseAssertion(in.Credential)
		if err != nil {
			if code := autherr.CodeOf(verificationFailed(err)); code != autherr.PasskeyVerificationFailed {
				t.Fatalf("a credential that does not parse answered %s", code)
			}
			return
		}
		if len(p.RawID) == 0 {
			t.Fatalf("parsed a credential without an id: %q", in.Credential)
		}
		_ = credentialKey(p.RawID)
	})
}
