package web_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/web"
)

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (r registerRequest) Validate() error {
	fields := map[string]string{}
	if !strings.Contains(r.Email, "@") {
		fields["email"] = "must be an email address"
	}
	if len(r.Password) < 12 {
		fields["password"] = "must be at least 12 characters"
	}
	if len(fields) > 0 {
		return web.Invalid(fields)
	}
	return nil
}

// A handler written as func(w, r) error, mounted through one adapter behind
// the request-id and security-header middleware.
func Example() {
	errs := autherr.Writer{Logger: slog.New(slog.DiscardHandler)}
	register := func(w http.ResponseWriter, r *http.Request) error {
		var req registerRequest
		if err := web.Decode(w, r, &req); err != nil {
			return err
		}
		return web.JSON(w, http.StatusCreated, map[string]string{"email": req.Email})
	}
	mux := http.NewServeMux()
	mux.Handle("POST /register", web.Handle(errs, register))
	srv := web.RequestID(web.SecurityHeaders(mux))

	for _, body := range []string{
		`{"email":"ada@example.com","password":"correct horse battery"}`,
		`{"email":"ada","password":"short"}`,
		`{"email":`,
	} {
		req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", "req-1")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 201 {"email":"ada@example.com"}
	// 400 {"error":{"code":"VALIDATION_FAILED","message":"invalid fields: email, password","requestId":"req-1","details":{"fields":{"email":"must be an email address","password":"must be at least 12 characters"}}}}
	// 400 {"error":{"code":"BAD_REQUEST","message":"request body is not valid JSON","requestId":"req-1"}}
}

func ExampleClientIP() {
	trusted, err := web.ParsePrefixes("10.0.0.0/8") // MANA_AUTH_TRUSTED_PROXIES
	if err != nil {
		fmt.Println(err)
		return
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.5:40000" // the load balancer
	req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")

	fmt.Println(web.ClientIP(req, trusted))                                            // the hop the load balancer saw
	fmt.Println(web.ClientIP(req, nil))                                                // no trusted proxies: the header is ignored
	fmt.Println(web.ClientIP(req, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")})) // trusting everyone believes forged entries
	// Output:
	// 203.0.113.7
	// 10.0.0.5
	// 6.6.6.6
}
