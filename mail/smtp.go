package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/mana-how/mana-auth/autherr"
)

// SMTPConfig configures an SMTP. Only URL is required.
type SMTPConfig struct {
	// URL is the relay (SMTP_URL):
	//
	//	smtp://user:pass@host:port   STARTTLS when the server offers it (default port 587)
	//	smtp://…?starttls=required   STARTTLS or fail: no mail ever goes out in clear text
	//	smtps://user:pass@host:port  implicit TLS (default port 465)
	//
	// User info, when present, is sent with AUTH PLAIN (or LOGIN when the
	// relay offers only that) — but only over TLS, or to a loopback host
	// (localhost, 127.0.0.0/8, ::1): credentials never cross a network in
	// clear text, so smtp://user:pass@relay without STARTTLS fails at the
	// first Send. Without user info no AUTH is attempted. Any other query
	// parameter, a path or an unknown scheme is refused.
	URL *url.URL
	// From is the sender (MAIL_FROM), "addr" or "Name <addr>";
	// empty means "no-reply@localhost".
	From string
	// Timeout bounds one whole Send: dial, TLS, AUTH and transfer.
	// Zero means 10 s.
	Timeout time.Duration
	// TLSConfig, optional, is used for STARTTLS and implicit TLS (cloned;
	// ServerName defaults to the URL's host, MinVersion to TLS 1.2). Tests
	// use it to trust their own CA.
	TLSConfig *tls.Config
}

// SMTP sends mail through an SMTP relay with
// github.com/wneessen/go-mail, one connection per Send. It is safe for
// concurrent use. It keeps the relay's password out of its errors and has no
// logger: the caller logs the returned error (autherr.Error's LogValue),
// which never holds a message body.
type SMTP struct {
	host        string
	port        int
	dialAddr    string // host:port for the dialer (IPv6-safe)
	display     string // scheme://host:port, no credentials: for errors
	implicitTLS bool
	policy      gomail.TLSPolicy
	from        string
	timeout     time.Duration
	tlsConfig   *tls.Config
	helo        string
	// newAuth returns a fresh authenticator per Send, nil without
	// credentials. A closure keeps the password out of fmt's %+v.
	newAuth func() gosmtp.Auth
}

// NewSMTP validates cfg (see SMTPConfig) and returns a mailer. It does
// not connect: an unreachable relay shows at the first Send.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	u := cfg.URL
	if u == nil {
		return nil, errors.New("mail: SMTP config: URL is required")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("mail: SMTP config: URL %s: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}
	m := &SMTP{}
	defaultPort := 587
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		m.policy = gomail.TLSOpportunistic
	case "smtps":
		m.implicitTLS = true
		defaultPort = 465
	default:
		return nil, bad("scheme must be smtp or smtps")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, bad("want scheme://[user:pass@]host[:port][?starttls=required], nothing else")
	}
	m.host = u.Hostname()
	if m.host == "" {
		return nil, bad("host is missing")
	}
	m.port = defaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("port %q is not in 1-65535", p)
		}
		m.port = n
	}
	m.dialAddr = net.JoinHostPort(m.host, strconv.Itoa(m.port))
	m.display = strings.ToLower(u.Scheme) + "://" + m.dialAddr

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("query: %v", err)
	}
	for k, vs := range q {
		if k != "starttls" {
			return nil, bad("unknown parameter %q (only starttls)", k)
		}
		if len(vs) != 1 {
			return nil, bad("starttls given %d times", len(vs))
		}
		if m.implicitTLS {
			return nil, bad("starttls makes no sense with smtps (implicit TLS)")
		}
		switch strings.ToLower(vs[0]) {
		case "required":
			m.policy = gomail.TLSMandatory
		case "opportunistic":
			m.policy = gomail.TLSOpportunistic
		default:
			return nil, bad("starttls=%q: want required or opportunistic", vs[0])
		}
	}

	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		if user == "" {
			return nil, bad("user info without a user name")
		}
		loopback := mailIsLoopback(m.host)
		m.newAuth = func() gosmtp.Auth {
			return &mailAuth{user: user, pass: pass, loopback: loopback}
		}
	}

	m.from = cfg.From
	if m.from == "" {
		m.from = "no-reply@localhost"
	}
	if mailHasControl(m.from) {
		return nil, errors.New("mail: SMTP config: From contains a control character")
	}
	if _, err := netmail.ParseAddress(m.from); err != nil {
		return nil, fmt.Errorf("mail: SMTP config: From %q: %w", m.from, err)
	}

	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("mail: SMTP config: Timeout %v is negative", cfg.Timeout)
	case cfg.Timeout == 0:
		m.timeout = 10 * time.Second
	default:
		m.timeout = cfg.Timeout
	}

	if cfg.TLSConfig != nil {
		m.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		m.tlsConfig = &tls.Config{}
	}
	if m.tlsConfig.ServerName == "" {
		m.tlsConfig.ServerName = m.host
	}
	if m.tlsConfig.MinVersion == 0 {
		m.tlsConfig.MinVersion = tls.VersionTLS12
	}

	// EHLO names this machine, as go-mail does by default.
	if m.helo, err = os.Hostname(); err != nil {
		return nil, fmt.Errorf("mail: SMTP config: host name for EHLO: %w", err)
	}
	if m.helo == "" {
		m.helo = "localhost"
	}
	return m, nil
}

// Send delivers msg to the relay in one connection (EHLO, STARTTLS as
// configured, AUTH when the URL has credentials, MAIL, RCPT, DATA, QUIT),
// bounded by ctx and by the configured Timeout.
//
// Errors (see Mailer): INTERNAL before any connection when msg is unusable
// (CR/LF in To or Subject, an invalid To, an empty Text); SERVICE_UNAVAILABLE
// when the relay cannot be reached, the deadline passes, STARTTLS is required
// but not offered, TLS or AUTH fails, credentials would go out in clear text,
// or the relay refuses the message. A failure after the relay accepted the
// message (at QUIT) is reported too, so a retry may deliver a second mail.
func (m *SMTP) Send(ctx context.Context, msg Message) error {
	if err := mailValidate(msg); err != nil {
		return err
	}
	gm, err := m.mailBuild(msg)
	if err != nil {
		return autherr.Wrap(autherr.Internal, fmt.Errorf("mail: mail: build message: %w", err), "")
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	if err := m.mailDeliver(ctx, gm); err != nil {
		if ctxErr := context.Cause(ctx); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		}
		return autherr.Wrap(autherr.ServiceUnavailable,
			fmt.Errorf("mail: send mail via %s: %w", m.display, err), "mail could not be sent")
	}
	return nil
}

// mailBuild turns msg into a go-mail message: text/plain, plus
// text/html as an alternative when msg.HTML is set; UTF-8, quoted-printable.
func (m *SMTP) mailBuild(msg Message) (*gomail.Msg, error) {
	gm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := gm.From(m.from); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := gm.To(msg.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	gm.Subject(msg.Subject)
	gm.SetDate()
	gm.SetMessageID()
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	}
	return gm, nil
}

// mailDeliver runs one SMTP conversation. It dials itself so that it holds
// the connection: cancelling ctx closes it, which aborts whatever command is
// waiting, and it is closed in every case when the conversation ends (go-mail
// leaves it open when EHLO, STARTTLS or AUTH fail).
func (m *SMTP) mailDeliver(ctx context.Context, gm *gomail.Msg) error {
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	// Errors of these Close calls are not interesting: the connection is
	// being abandoned (deadline) or is already closed by QUIT; what went
	// wrong is in the error of the conversation itself.
	abort := func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	}
	stop := context.AfterFunc(ctx, abort)
	defer stop()
	defer abort()

	dial := func(dctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, "tcp", m.dialAddr)
		if err != nil {
			return nil, err
		}
		if m.implicitTLS {
			tc := tls.Client(c, m.tlsConfig)
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = c.Close() // the handshake error is what matters
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			c = tc
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		if err := ctx.Err(); err != nil { // cancelled before conn was set
			abort()
			return nil, err
		}
		return c, nil
	}

	opts := []gomail.Option{
		gomail.WithPort(m.port),
		gomail.WithTimeout(m.timeout),
		gomail.WithHELO(m.helo),
		gomail.WithTLSConfig(m.tlsConfig),
		gomail.WithDialContextFunc(dial),
	}
	if m.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(m.policy))
	}
	if m.newAuth != nil {
		opts = append(opts, gomail.WithSMTPAuthCustom(m.newAuth()))
	}
	// A client per Send: go-mail's Client keeps per-connection state.
	client, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return client.DialAndSendWithContext(ctx, gm)
}

// errMailClearTextAuth is returned when the connection is not encrypted and
// the relay is not on this machine.
var errMailClearTextAuth = errors.New("refusing to send SMTP credentials over an unencrypted connection " +
	"to a host that is not loopback (the relay did not offer STARTTLS; use smtps:// or ?starttls=required)")

// mailAuth is AUTH PLAIN, or LOGIN when the relay offers only that, sent
// only over TLS or to a loopback host.
type mailAuth struct {
	user, pass string
	loopback   bool
	next       gosmtp.Auth
}

func (a *mailAuth) Start(s *gosmtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !a.loopback {
		return "", nil, errMailClearTextAuth
	}
	offers := func(mech string) bool {
		for _, m := range s.Auth {
			if strings.EqualFold(m, mech) {
				return true
			}
		}
		return false
	}
	// The encryption check above replaces go-mail's (which trusts only the
	// literal names localhost, 127.0.0.1 and ::1), hence allowUnenc.
	switch {
	case offers("PLAIN"):
		a.next = gosmtp.PlainAuth("", a.user, a.pass, s.Name, true)
	case offers("LOGIN"):
		a.next = gosmtp.LoginAuth(a.user, a.pass, s.Name, true)
	default:
		return "", nil, fmt.Errorf("relay offers no supported AUTH mechanism (want PLAIN or LOGIN, offered %q)",
			strings.Join(s.Auth, " "))
	}
	return a.next.Start(s)
}

func (a *mailAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if a.next == nil {
		return nil, errors.New("AUTH continued before it started")
	}
	return a.next.Next(fromServer, more)
}

// mailIsLoopback reports whether host names this machine: "localhost" or a
// loopback IP address.
func mailIsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
