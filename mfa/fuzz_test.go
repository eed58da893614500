package mfa

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

// FuzzVerifyBody feeds POST /verify bodies through the shared decoder and
// the proof parser: nothing panics, every refusal is a 400 of the
// taxonomy, and what is accepted is a well-formed code — six digits, or
// twelve symbols of the recovery alphabet that parse again to themselves.
func FuzzVerifyBody(f *testing.F) {
	for _, seed := range []string{
		`{"mfaToken":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","code":"123456"}`,
		`{"mfaToken":"x","code":" 123 456 "}`,
		`{"mfaToken":"x","recoveryCode":"7KQ2-M9XD-4HNC"}`,
		`{"mfaToken":"x","recoveryCode":"oil0 0000 0000"}`,
		`{"mfaToken":"x","code":"123456","recoveryCode":"7KQ2-M9XD-4HNC"}`,
		`{"mfaToken":"x"}`, `{}`, `null`, `[]`, `{"code":123456}`, `{"mfaToken":"x","code":"١٢٣٤٥٦"}`,
		`{"mfaToken":"x","recoveryCode":"` + strings.Repeat("-", 70) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/verify", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var in verifyIn
		if err := web.Decode(httptest.NewRecorder(), r, &in); err != nil {
			if s := autherr.Classify(err).Status(); s != http.StatusBadRequest && s != http.StatusRequestEntityTooLarge {
				t.Fatalf("decode refused %q with status %d: %v", body, s, err)
			}
			return
		}
		code, recovery, err := in.Proof.parse()
		if err != nil {
			if c := autherr.CodeOf(err); c != autherr.ValidationFailed {
				t.Fatalf("parse refused %+v with %s", in.Proof, c)
			}
			return
		}
		if !recovery {
			if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
				t.Fatalf("accepted code %q from %q", code, in.Code)
			}
			return
		}
		if len(code) != recoveryLen || strings.Trim(code, recoveryAlphabet) != "" {
			t.Fatalf("accepted recovery code %q from %q", code, in.RecoveryCode)
		}
		again, err := normalizeRecoveryCode("recoveryCode", code)
		if err != nil || again != code {
			t.Fatalf("normalising %q again gave %q, %v", code, again, err)
		}
	})
}
