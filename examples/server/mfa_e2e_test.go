package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image/png"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mfaPath(p string) string { return mfaPrefix + p }

// totpAt is an RFC 6238 code (HMAC-SHA-1, 30 s, 6 digits) for a time
// step, written from the RFCs rather than taken from the library the
// server uses.
func totpAt(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := uint32(sum[off]&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", bin%1_000_000)
}

func totpStep(t time.Time) int64 { return t.Unix() / 30 }

type e2eMFAStatus struct {
	TOTP              bool `json:"totp"`
	RecoveryCodesLeft int  `json:"recoveryCodesLeft"`
}

type e2eMFAChallenge struct {
	MFARequired bool     `json:"mfaRequired"`
	MFAToken    string   `json:"mfaToken"`
	Methods     []string `json:"methods"`
	AccessToken string   `json:"accessToken"`
}

func (f *e2eServer) mfaStatus(bearer reqOpt) e2eMFAStatus {
	f.t.Helper()
	return decodeJSON[e2eMFAStatus](f.t, f.expect(200, "GET", mfaPath("/status"), nil, bearer).body)
}

// mfaChallenge signs in with the password and returns the mfaToken.
func (f *e2eServer) mfaChallenge(email, password string) string {
	f.t.Helper()
	r := f.expect(200, "POST", authPath("/login"), map[string]any{"email": email, "password": password})
	ch := decodeJSON[e2eMFAChallenge](f.t, r.body)
	require.True(f.t, ch.MFARequired, "login answered %s", r.body)
	assert.Equal(f.t, []string{"totp", "recovery"}, ch.Methods)
	assert.Empty(f.t, ch.AccessToken, "no tokens before the second step")
	assert.Nil(f.t, sessionCookie(r), "no session cookie before the second step")
	return ch.MFAToken
}

// mfaVerify completes a sign-in and checks the answer is /login's.
func (f *e2eServer) mfaVerify(mfaToken string, proof map[string]any) e2ePair {
	f.t.Helper()
	body := map[string]any{"mfaToken": mfaToken}
	for k, v := range proof {
		body[k] = v
	}
	r := f.expect(200, "POST", mfaPath("/verify"), body)
	p := decodeJSON[e2ePair](f.t, r.body)
	assert.Equal(f.t, "Bearer", p.TokenType)
	p.cookie = assertSessionCookie(f.t, r)
	return p
}

// mfaEnable enrolls and confirms (one password re-check) and returns the
// secret, the recovery codes and the time step the confirmation used.
func (f *e2eServer) mfaEnable(bearer reqOpt, password string) (secret []byte, codes []string, step int64) {
	f.t.Helper()
	enr := decodeJSON[struct {
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauthUrl"`
		QRPNG      string `json:"qrPng"`
	}](f.t, f.expect(200, "POST", mfaPath("/totp/enroll"), map[string]any{"password": password}, bearer).body)
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enr.Secret)
	require.NoError(f.t, err)
	assert.Contains(f.t, enr.OTPAuthURL, "secret="+enr.Secret)
	raw, err := base64.StdEncoding.DecodeString(enr.QRPNG)
	require.NoError(f.t, err)
	_, err = png.Decode(bytes.NewReader(raw))
	require.NoError(f.t, err, "qrPng is a PNG")

	step = totpStep(time.Now())
	codes = decodeJSON[struct {
		RecoveryCodes []string `json:"recoveryCodes"`
	}](f.t, f.expect(200, "POST", mfaPath("/totp/confirm"), map[string]any{"code": totpAt(secret, step)}, bearer).body).RecoveryCodes
	require.Len(f.t, codes, 10)
	return secret, codes, step
}

// e2eMFA: api.md "Multi-factor authentication" through the server —
// enroll, confirm with a code the test computes, the login's
// mfaRequired answer, verify with a code and with a recovery code, replay
// and reuse refused, status, removal; and wrong codes lock the account
// like wrong passwords. Codes of steps after the confirmation's (within
// the server's one step of skew) keep the group independent of the wall
// clock's step boundaries. 12 password operations.
func e2eMFA(t *testing.T, f *e2eServer) {
	const email = "mia@example.test"
	f.signup(email, e2ePass1)
	p := f.login(email, e2ePass1)
	bearer := withBearer(p.AccessToken)
	assert.Equal(t, e2eMFAStatus{}, f.mfaStatus(bearer))
	f.expectCode(400, "VALIDATION_FAILED", "POST", mfaPath("/totp/enroll"), map[string]any{}, bearer)
	f.expectCode(401, "UNAUTHORIZED", "GET", mfaPath("/status"), nil)
	f.expectCode(404, "NOT_FOUND", "POST", mfaPath("/totp/confirm"), map[string]any{"code": "123456"}, bearer)

	secret, codes, step := f.mfaEnable(bearer, e2ePass1)
	assert.Equal(t, e2eMFAStatus{TOTP: true, RecoveryCodesLeft: 10}, f.mfaStatus(bearer))
	f.expectCode(409, "CONFLICT", "POST", mfaPath("/totp/enroll"), map[string]any{"password": e2ePass1}, bearer)
	f.expectCode(409, "CONFLICT", "POST", mfaPath("/totp/confirm"), map[string]any{"code": totpAt(secret, step)}, bearer)

	// The second step, by code: the next step's code (the confirmation
	// used this one).
	tok := f.mfaChallenge(email, e2ePass1)
	f.expectCode(400, "VALIDATION_FAILED", "POST", mfaPath("/verify"), map[string]any{"mfaToken": tok})
	signedIn := f.mfaVerify(tok, map[string]any{"code": totpAt(secret, step+1)})
	assert.Equal(t, email, signedIn.User.Email)
	list := f.sessions(withBearer(signedIn.AccessToken))
	require.NotEmpty(t, list)
	assert.Equal(t, "mfa", list[0].Method)
	f.expectCode(401, "TOKEN_INVALID", "POST", mfaPath("/verify"), map[string]any{"mfaToken": tok, "code": totpAt(secret, step+1)},
		"a spent mfaToken")

	// Replay of the same code with a new challenge: refused; a recovery
	// code completes it, once.
	tok = f.mfaChallenge(email, e2ePass1)
	f.expectCode(401, "MFA_INVALID_CODE", "POST", mfaPath("/verify"), map[string]any{"mfaToken": tok, "code": totpAt(secret, step+1)},
		"a replayed code")
	byRecovery := f.mfaVerify(tok, map[string]any{"recoveryCode": codes[0]})
	tok = f.mfaChallenge(email, e2ePass1)
	f.expectCode(401, "MFA_INVALID_CODE", "POST", mfaPath("/verify"), map[string]any{"mfaToken": tok, "recoveryCode": codes[0]},
		"a spent recovery code")
	f.expectCode(401, "TOKEN_INVALID", "POST", mfaPath("/verify"), map[string]any{"mfaToken": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "code": "123456"})
	assert.Equal(t, e2eMFAStatus{TOTP: true, RecoveryCodesLeft: 9}, f.mfaStatus(withBearer(byRecovery.AccessToken)))

	// Removal: a recent session and a proof; then the login asks for
	// nothing.
	f.expectCode(401, "MFA_INVALID_CODE", "DELETE", mfaPath("/totp"), map[string]any{"recoveryCode": codes[0]}, bearer)
	f.expect(204, "DELETE", mfaPath("/totp"), map[string]any{"recoveryCode": codes[1]}, withBearer(byRecovery.AccessToken))
	assert.Equal(t, e2eMFAStatus{}, f.mfaStatus(bearer))
	f.expectCode(404, "NOT_FOUND", "DELETE", mfaPath("/totp"), map[string]any{"code": "123456"}, bearer)
	f.login(email, e2ePass1)

	// Five wrong codes lock the account like five wrong passwords: the
	// right code and then the right password answer ACCOUNT_LOCKED.
	const max = "max@example.test"
	f.signup(max, e2ePass2)
	mp := f.login(max, e2ePass2)
	mSecret, _, mStep := f.mfaEnable(withBearer(mp.AccessToken), e2ePass2)
	tok = f.mfaChallenge(max, e2ePass2)
	for i := range 5 {
		f.expectCode(401, "MFA_INVALID_CODE", "POST", mfaPath("/verify"), map[string]any{"mfaToken": tok, "code": "000000"},
			fmt.Sprintf("wrong code %d", i+1))
	}
	e := f.expectCode(429, "ACCOUNT_LOCKED", "POST", mfaPath("/verify"), map[string]any{"mfaToken": tok, "code": totpAt(mSecret, mStep+1)})
	assert.Greater(t, e.RemainingSeconds, 1700)
	f.expectCode(429, "ACCOUNT_LOCKED", "POST", authPath("/login"), map[string]any{"email": max, "password": e2ePass2})
}
