package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/password"
)

// hashingRoutes are the server's routes that compute a password hash
// (login, register, the re-checks and changes, wherever they are
// mounted). Under a flood they are what the CPU cannot keep up with;
// server.handle puts them behind the admission.
var hashingRoutes = map[string]bool{
	"POST " + authPrefix + "/register": true, "POST " + authPrefix + "/login": true,
	"POST " + authPrefix + "/reset-password": true, "POST " + authPrefix + "/change-email": true,
	"POST " + authPrefix + "/change-password": true, "DELETE " + authPrefix + "/account": true,
	"POST " + mfaPrefix + "/totp/enroll": true, "DELETE " + dataPath: true,
}

// admission lets at most as many hashing requests in at once as the
// password hasher can run and queue, and answers the others 503
// SERVICE_UNAVAILABLE with Retry-After 1 straight away — before they read
// their body, touch the database or wait anywhere. Without it a flood
// waits in the database pool before it ever reaches the hasher's bounded
// queue: hundreds of requests in flight, each with its goroutines and
// buffers, and every refused one paid for with a lockout round trip. A
// refused request never reaches the lockout gate, so it counts toward
// nothing.
type admission struct {
	slots chan struct{}
	shed  *prometheus.CounterVec
	errs  autherr.Writer
}

// newAdmission admits limit requests at once, or when limit is 0 as many
// as h runs and queues.
func newAdmission(h *password.Hasher, limit int, reg prometheus.Registerer, errs autherr.Writer) (*admission, error) {
	if limit == 0 {
		st := h.Stats()
		limit = st.MaxConcurrent + st.MaxQueue
	}
	a := &admission{
		slots: make(chan struct{}, limit),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mana_auth_http_shed_total",
			Help: "Requests to password routes refused with 503 at once because as many as the password hasher can run and queue were in flight.",
		}, []string{"route"}),
		errs: errs,
	}
	if reg != nil {
		if err := reg.Register(a.shed); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// wrap admits requests to next.
func (a *admission) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case a.slots <- struct{}{}:
		default:
			a.shed.WithLabelValues(r.Pattern).Inc()
			// The body is left unread, and the connection is closed after
			// the answer rather than kept for the next request: net/http
			// would otherwise read the body to reuse the connection, and
			// a flood would keep a connection (its buffers and goroutine)
			// per client open through the Retry-After pause.
			w.Header().Set("Connection", "close")
			a.errs.Write(w, r, &autherr.Error{Code: autherr.ServiceUnavailable,
				Message: "too many sign-ins in progress; retry shortly", RemainingSeconds: 1})
			return
		}
		defer func() { <-a.slots }()
		next.ServeHTTP(w, r)
	})
}
