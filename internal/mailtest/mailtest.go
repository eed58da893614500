// Package mailtest runs a real SMTP server in-process for integration tests
// (github.com/emersion/go-smtp on 127.0.0.1, a random port) and reads the
// mails it receives: decoded subject and text part, recipients, whether the
// client authenticated and over TLS.
//
//	srv := mailtest.NewServer(t)
//	mailer, _ := mail.NewSMTP(mail.SMTPConfig{URL: srv.URL(), From: "auth@example.com"})
//	… trigger the mail …
//	m := srv.WaitFor(t, "alice@example.com", 5*time.Second)
//	token := mailtest.TokenFromText(t, m.Text, "verify-email")
//
// By default the server accepts any PLAIN credentials (and mail without
// AUTH) over plain TCP; options make it insist on given credentials, offer
// STARTTLS or speak implicit TLS. RejectNext and Close make it fail.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the server accepted.
type Mail struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO)
	Data []byte   // the message as received (headers and body)
	// Subject is the decoded Subject header; Text the decoded text/plain
	// part (quoted-printable and base64 undone), HTML the text/html part.
	Subject, Text, HTML string

	AuthUser string // the user name the client authenticated with, "" without AUTH
	TLS      bool   // the mail came over TLS (STARTTLS or implicit)
}

// Option configures a Server.
type Option func(*Server)

// WithCredentials makes the server accept only this user and password, and
// refuse mail from a client that did not authenticate. URL carries them.
func WithCredentials(user, pass string) Option {
	return func(s *Server) {
		s.user, s.pass, s.requireAuth = user, pass, true
	}
}

// WithSTARTTLS makes the server offer STARTTLS with cfg (see SelfSignedTLS).
func WithSTARTTLS(cfg *tls.Config) Option {
	return func(s *Server) {
		s.starttls = cfg
	}
}

// WithImplicitTLS makes the server speak TLS from the first byte with cfg;
// URL then has the scheme smtps.
func WithImplicitTLS(cfg *tls.Config) Option {
	return func(s *Server) {
		s.implicitTLS = cfg
	}
}

// Server is an SMTP server on 127.0.0.1 that records what it receives. It
// is safe for concurrent use.
type Server struct {
	user, pass  string
	requireAuth bool
	starttls    *tls.Config
	implicitTLS *tls.Config

	srv  *smtp.Server
	ln   net.Listener
	addr string
	done chan struct{} // closed when Serve returned

	mu        sync.Mutex
	closed    bool
	t         testing.TB
	mails     []Mail
	taken     []bool // per mail: returned by WaitFor
	changed   chan struct{}
	rejectFor []int // codes for the next transactions
	serveErr  error
}

// NewServer starts a server on 127.0.0.1:0 with AllowInsecureAuth; it is
// closed in t.Cleanup. Without WithCredentials it accepts any PLAIN
// credentials (URL uses user "user", password "pass").
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{user: "user", pass: "pass", t: t, changed: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	})
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.TLSConfig = s.starttls
	srv.ErrorLog = serverLog{s}
	s.srv = srv

	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if s.implicitTLS != nil {
		l = tls.NewListener(l, s.implicitTLS)
	}
	s.ln = l
	s.addr = l.Addr().String()
	go func() {
		defer close(s.done)
		err := srv.Serve(l)
		s.mu.Lock()
		s.serveErr = err
		s.mu.Unlock()
	}()
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		err := s.serveErr
		s.mu.Unlock()
		if err != nil {
			t.Errorf("mailtest: serve: %v", err)
		}
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is smtp://user:pass@127.0.0.1:port (smtps:// with WithImplicitTLS),
// with the configured or default credentials.
func (s *Server) URL() *url.URL {
	scheme := "smtp"
	if s.implicitTLS != nil {
		scheme = "smtps"
	}
	return &url.URL{Scheme: scheme, User: url.UserPassword(s.user, s.pass), Host: s.addr}
}

// Close stops the server at once: the listener and every open connection
// close, so later sends fail with "connection refused". Safe to call twice.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.srv.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.t.Errorf("mailtest: close: %v", err)
	}
	// go-smtp closes only the listeners Serve has registered: one closed
	// before the serving goroutine got that far would stay open.
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.t.Errorf("mailtest: close listener: %v", err)
	}
	<-s.done
}

// RejectNext makes the server refuse the next mail transaction at MAIL FROM
// with code (e.g. 451 for a temporary, 550 for a permanent failure).
// Several calls queue up.
func (s *Server) RejectNext(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectFor = append(s.rejectFor, code)
}

// Messages returns a copy of every mail received so far, oldest first.
func (s *Server) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Mail, len(s.mails))
	copy(out, s.mails)
	return out
}

// WaitFor returns the oldest mail to the envelope recipient to (compared
// case-insensitively) that no earlier WaitFor returned, waiting up to
// timeout; it fails the test when none arrives in time. Call it from the
// test's goroutine.
func (s *Server) WaitFor(t testing.TB, to string, timeout time.Duration) Mail {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i, m := range s.mails {
			if s.taken[i] {
				continue
			}
			for _, rcpt := range m.To {
				if strings.EqualFold(rcpt, to) {
					s.taken[i] = true
					s.mu.Unlock()
					return m
				}
			}
		}
		changed := s.changed
		var got []string
		for _, m := range s.mails {
			got = append(got, strings.Join(m.To, ","))
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("mailtest: no new mail to %q within %v; received mails to %q", to, timeout, got)
			return Mail{}
		}
	}
}

// TokenFromText finds the one link "<anything>/<path>?token=<token>" in
// text and returns the token, query-unescaped. It fails the test when text
// holds no such link or more than one.
func TokenFromText(t testing.TB, text, path string) string {
	t.Helper()
	re := regexp.MustCompile(`/` + regexp.QuoteMeta(path) + `\?token=([^\s<>"'&#)]+)`)
	found := re.FindAllStringSubmatch(text, -1)
	if len(found) != 1 {
		t.Fatalf("mailtest: want exactly one %q link with a token in the text, found %d:\n%s", "/"+path+"?token=", len(found), text)
		return ""
	}
	tok, err := url.QueryUnescape(found[0][1])
	if err != nil {
		t.Fatalf("mailtest: token %q: %v", found[0][1], err)
		return ""
	}
	return tok
}

// SelfSignedTLS returns a server config with a fresh self-signed
// certificate for 127.0.0.1, ::1 and localhost, and a client config whose
// roots trust only that certificate.
func SelfSignedTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("mailtest: parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// logf reports server-side trouble to the test while it runs.
func (s *Server) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.t.Logf("mailtest: "+format, args...)
	}
}

func (s *Server) takeReject() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rejectFor) == 0 {
		return 0, false
	}
	code := s.rejectFor[0]
	s.rejectFor = s.rejectFor[1:]
	return code, true
}

func (s *Server) record(m Mail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mails = append(s.mails, m)
	s.taken = append(s.taken, false)
	close(s.changed)
	s.changed = make(chan struct{})
}

// serverLog sends go-smtp's error log to the test log.
type serverLog struct{ s *Server }

func (l serverLog) Printf(format string, v ...any) { l.s.logf(format, v...) }
func (l serverLog) Println(v ...any)               { l.s.logf("%s", strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

// session is one SMTP connection's state.
type session struct {
	srv  *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if ss.srv.requireAuth && (user != ss.srv.user || pass != ss.srv.pass) {
			return smtp.ErrAuthFailed
		}
		if identity != "" && identity != user {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.requireAuth && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if code, ok := ss.srv.takeReject(); ok {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "rejected by mailtest.RejectNext"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: ss.from, To: append([]string(nil), ss.to...), Data: data, AuthUser: ss.user}
	_, m.TLS = ss.conn.TLSConnectionState()
	if err := parse(&m); err != nil {
		// Refuse it: the sender sees the failure, the test log the reason.
		ss.srv.logf("unparsable mail from %q: %v", ss.from, err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "mailtest cannot parse the message: " + err.Error()}
	}
	ss.srv.record(m)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }

// parse fills m's Subject, Text and HTML from m.Data.
func parse(m *Mail) error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	return walkPart(m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0)
}

// walkPart decodes one MIME entity; multiparts recursively, the first
// text/plain and text/html parts are kept.
func walkPart(m *Mail, contentType, encoding string, body io.Reader, depth int) error {
	if depth > 10 {
		return errors.New("MIME nesting deeper than 10")
	}
	if contentType == "" {
		contentType = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart undoes quoted-printable itself (and drops the header).
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			if err := walkPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips CR and LF itself
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("unknown transfer encoding %q", encoding)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = string(b)
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = string(b)
	}
	return nil
}
