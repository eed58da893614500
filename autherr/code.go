package autherr

import (
	"net/http"
	"slices"
)

// Code is a wire error code of the mana-auth HTTP contract (api.md). Codes
// are added, never renamed: clients branch on them.
type Code string

// The taxonomy of api.md. The comment after each code is its HTTP status.
const (
	BadRequest                Code = "BAD_REQUEST"                 // 400: malformed JSON or request
	ValidationFailed          Code = "VALIDATION_FAILED"           // 400: well-formed but invalid values; details.fields
	WeakPassword              Code = "WEAK_PASSWORD"               // 400: password refused by policy
	InvalidCredentials        Code = "INVALID_CREDENTIALS"         // 401: wrong email/password; counts toward lockout
	MFAInvalidCode            Code = "MFA_INVALID_CODE"            // 401: wrong or replayed TOTP / recovery code; counts toward lockout
	ReauthRequired            Code = "REAUTH_REQUIRED"             // 401: the action needs a more recently authenticated session
	Unauthorized              Code = "UNAUTHORIZED"                // 401: no or unusable credentials on a protected route
	TokenInvalid              Code = "TOKEN_INVALID"               // 401: bad signature, malformed, revoked or reused token
	TokenExpired              Code = "TOKEN_EXPIRED"               // 401: token past its expiry
	PasskeyVerificationFailed Code = "PASSKEY_VERIFICATION_FAILED" // 401: WebAuthn ceremony did not verify
	EmailNotVerified          Code = "EMAIL_NOT_VERIFIED"          // 403: login before verifying the address
	AccountDisabled           Code = "ACCOUNT_DISABLED"            // 403: the account was disabled by an operator
	Forbidden                 Code = "FORBIDDEN"                   // 403: authenticated but not allowed
	NotFound                  Code = "NOT_FOUND"                   // 404: no such resource (or not yours)
	EmailAlreadyRegistered    Code = "EMAIL_ALREADY_REGISTERED"    // 409: the address is taken
	Conflict                  Code = "CONFLICT"                    // 409: state conflict not covered by a domain code
	PayloadTooLarge           Code = "PAYLOAD_TOO_LARGE"           // 413: body over the limit
	AccountLocked             Code = "ACCOUNT_LOCKED"              // 429: lockout active; RemainingSeconds set
	RateLimited               Code = "RATE_LIMITED"                // 429: throttled; RemainingSeconds set
	SignupLimitReached        Code = "SIGNUP_LIMIT_REACHED"        // 429: daily signup cap reached
	Internal                  Code = "INTERNAL"                    // 500: a bug
	ServiceUnavailable        Code = "SERVICE_UNAVAILABLE"         // 503: database/network/infrastructure failure

	// Domain codes of the encryption vault and mission grants.
	VaultNotFound       Code = "VAULT_NOT_FOUND"       // 404: no vault before init
	ZKActive            Code = "ZK_ACTIVE"             // 409: zero-knowledge mode forbids the operation
	ZKRotateForbidden   Code = "ZK_ROTATE_FORBIDDEN"   // 409: no server-side rotation in zero-knowledge mode
	RecoveryWrapMissing Code = "RECOVERY_WRAP_MISSING" // 400: zero knowledge needs a recovery wrap first
	GrantNotConfigured  Code = "GRANT_NOT_CONFIGURED"  // 503: no AI public key configured
)

// codeInfo is the one table of the taxonomy: status and the default
// client-safe message of every known code.
type codeInfo struct {
	status  int
	message string
}

var codes = map[Code]codeInfo{
	BadRequest:                {http.StatusBadRequest, "malformed request"},
	ValidationFailed:          {http.StatusBadRequest, "request validation failed"},
	WeakPassword:              {http.StatusBadRequest, "password does not meet the password policy"},
	InvalidCredentials:        {http.StatusUnauthorized, "invalid email or password"},
	MFAInvalidCode:            {http.StatusUnauthorized, "invalid or already used code"},
	ReauthRequired:            {http.StatusUnauthorized, "sign in again to do this"},
	Unauthorized:              {http.StatusUnauthorized, "authentication required"},
	TokenInvalid:              {http.StatusUnauthorized, "token is invalid"},
	TokenExpired:              {http.StatusUnauthorized, "token has expired"},
	PasskeyVerificationFailed: {http.StatusUnauthorized, "passkey verification failed"},
	EmailNotVerified:          {http.StatusForbidden, "email address is not verified"},
	AccountDisabled:           {http.StatusForbidden, "this account is disabled"},
	Forbidden:                 {http.StatusForbidden, "forbidden"},
	NotFound:                  {http.StatusNotFound, "not found"},
	EmailAlreadyRegistered:    {http.StatusConflict, "email address is already registered"},
	Conflict:                  {http.StatusConflict, "request conflicts with the current state"},
	PayloadTooLarge:           {http.StatusRequestEntityTooLarge, "request body too large"},
	AccountLocked:             {http.StatusTooManyRequests, "account temporarily locked"},
	RateLimited:               {http.StatusTooManyRequests, "too many requests"},
	SignupLimitReached:        {http.StatusTooManyRequests, "daily signup limit reached"},
	Internal:                  {http.StatusInternalServerError, "internal error"},
	ServiceUnavailable:        {http.StatusServiceUnavailable, "service temporarily unavailable"},
	VaultNotFound:             {http.StatusNotFound, "encryption vault not found"},
	ZKActive:                  {http.StatusConflict, "zero-knowledge mode is active"},
	ZKRotateForbidden:         {http.StatusConflict, "key rotation is not available in zero-knowledge mode"},
	RecoveryWrapMissing:       {http.StatusBadRequest, "a recovery wrap is required first"},
	GrantNotConfigured:        {http.StatusServiceUnavailable, "mission grants are not configured"},
}

// Status is the HTTP status of the code; an unknown code answers 500.
func (c Code) Status() int {
	if info, ok := codes[c]; ok {
		return info.status
	}
	return http.StatusInternalServerError
}

// known reports whether c is in the taxonomy.
func (c Code) known() bool {
	_, ok := codes[c]
	return ok
}

// defaultMessage is the generic client-safe message of c.
func (c Code) defaultMessage() string {
	if info, ok := codes[c]; ok {
		return info.message
	}
	return codes[Internal].message
}

// Codes returns every known code, sorted; for documentation (the OpenAPI
// enum) and for tests that must cover the whole taxonomy.
func Codes() []Code {
	out := make([]Code, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
