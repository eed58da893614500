package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/mailtest"
)

func mailTestToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func mailTestLinks(t testing.TB) Links {
	t.Helper()
	u, err := url.Parse("https://auth.example.com/app")
	require.NoError(t, err)
	return Links{BaseURL: u}
}

func mailTestMailer(t testing.TB, cfg SMTPConfig) *SMTP {
	t.Helper()
	m, err := NewSMTP(cfg)
	require.NoError(t, err)
	return m
}

func TestSMTPMailerDeliversThroughRealServer(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithCredentials("mailer", "pw-7d1f"))
	mailer := mailTestMailer(t, SMTPConfig{URL: srv.URL(), From: "Mana Auth <auth@example.com>"})
	token := mailTestToken(t)
	msg := Verification(mailTestLinks(t), "alice@example.com", token, 24*time.Hour)

	require.NoError(t, mailer.Send(context.Background(), msg))

	got := srv.WaitFor(t, "alice@example.com", 5*time.Second)
	assert.Equal(t, "auth@example.com", got.From, "envelope sender")
	assert.Equal(t, []string{"alice@example.com"}, got.To)
	assert.Equal(t, msg.Subject, got.Subject)
	assert.Equal(t, "mailer", got.AuthUser, "the URL's credentials were used")
	assert.Contains(t, got.Text, "https://auth.example.com/app/verify-email?token="+token)
	assert.Contains(t, got.HTML, `href="https://auth.example.com/app/verify-email?token=`+token+`"`)
	assert.Equal(t, token, mailtest.TokenFromText(t, got.Text, "verify-email"), "the token read back is the one sent")

	parsed, err := netmail.ReadMessage(bytes.NewReader(got.Data))
	require.NoError(t, err)
	from, err := netmail.ParseAddress(parsed.Header.Get("From"))
	require.NoError(t, err)
	assert.Equal(t, &netmail.Address{Name: "Mana Auth", Address: "auth@example.com"}, from)
	assert.Equal(t, "<alice@example.com>", parsed.Header.Get("To"))
	assert.NotEmpty(t, parsed.Header.Get("Message-Id"))
	assert.NotEmpty(t, parsed.Header.Get("Date"))
}

func TestSMTPMailerWrongCredentialsIsUnavailable(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithCredentials("mailer", "right"))
	u := srv.URL()
	u.User = url.UserPassword("mailer", "wrong-pw-91c")
	mailer := mailTestMailer(t, SMTPConfig{URL: u})
	err := mailer.Send(context.Background(), Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
	require.Error(t, err)
	assert.True(t, autherr.IsUnavailable(err), "got %v", err)
	assert.NotContains(t, err.Error(), "wrong-pw-91c", "the password never shows in errors")
	assert.Empty(t, srv.Messages())
}

func TestSMTPMailerParallelSends(t *testing.T) {
	srv := mailtest.NewServer(t)
	mailer := mailTestMailer(t, SMTPConfig{URL: srv.URL(), From: "auth@example.com"})
	links := mailTestLinks(t)
	const n = 20
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = mailTestToken(t)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = mailer.Send(context.Background(), PasswordReset(links, fmt.Sprintf("u%d@example.com", i), tokens[i], time.Hour))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "send %d", i)
	}
	for i := range n {
		got := srv.WaitFor(t, fmt.Sprintf("u%d@example.com", i), 5*time.Second)
		assert.Equal(t, tokens[i], mailtest.TokenFromText(t, got.Text, "reset-password"), "mail %d", i)
	}
}

func TestSMTPMailerSTARTTLSRequiredButNotOffered(t *testing.T) {
	srv := mailtest.NewServer(t) // no STARTTLS
	u := srv.URL()
	u.RawQuery = "starttls=required"
	mailer := mailTestMailer(t, SMTPConfig{URL: u})
	err := mailer.Send(context.Background(), Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
	require.Error(t, err)
	assert.True(t, autherr.IsUnavailable(err), "got %v", err)
	assert.Empty(t, srv.Messages(), "nothing went out in clear text")
}

func TestSMTPMailerTLS(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	tests := []struct {
		name      string
		opt       mailtest.Option
		query     string
		clientTLS bool // trust the test certificate
		wantErr   bool
	}{
		{"STARTTLS opportunistic", mailtest.WithSTARTTLS(serverTLS), "", true, false},
		{"STARTTLS required", mailtest.WithSTARTTLS(serverTLS), "starttls=required", true, false},
		{"STARTTLS offered with an untrusted certificate: no clear-text fallback", mailtest.WithSTARTTLS(serverTLS), "", false, true},
		{"implicit TLS", mailtest.WithImplicitTLS(serverTLS), "", true, false},
		{"implicit TLS with an untrusted certificate", mailtest.WithImplicitTLS(serverTLS), "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tc.opt)
			u := srv.URL()
			u.RawQuery = tc.query
			cfg := SMTPConfig{URL: u, From: "auth@example.com", Timeout: 5 * time.Second}
			if tc.clientTLS {
				cfg.TLSConfig = clientTLS
			}
			mailer := mailTestMailer(t, cfg)
			token := mailTestToken(t)
			err := mailer.Send(context.Background(), EmailChange(mailTestLinks(t), "new@example.com", token, time.Hour))
			if tc.wantErr {
				require.Error(t, err)
				assert.True(t, autherr.IsUnavailable(err), "got %v", err)
				assert.Empty(t, srv.Messages())
				return
			}
			require.NoError(t, err)
			got := srv.WaitFor(t, "new@example.com", 5*time.Second)
			assert.True(t, got.TLS, "the mail travelled over TLS")
			assert.Equal(t, "user", got.AuthUser)
			assert.Equal(t, token, mailtest.TokenFromText(t, got.Text, "confirm-email-change"))
		})
	}
}

func TestSMTPMailerServerDownIsUnavailableAndFast(t *testing.T) {
	srv := mailtest.NewServer(t)
	mailer := mailTestMailer(t, SMTPConfig{URL: srv.URL(), Timeout: 2 * time.Second})
	srv.Close()

	start := time.Now()
	err := mailer.Send(context.Background(), Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
	require.Error(t, err)
	assert.True(t, autherr.IsUnavailable(err), "got %v", err)
	assert.Equal(t, autherr.ServiceUnavailable, autherr.CodeOf(err))
	assert.Less(t, time.Since(start), 20*time.Second, "fails instead of hanging (a wide bound: a loaded machine must not fail it)")
	assert.NotContains(t, err.Error(), "pass", "no credentials in the error")
}

// A relay that accepts the connection and then says nothing: Send must give
// up after Timeout, not hang.
func TestSMTPMailerTimeoutOnSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed by the cleanup below
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		require.NoError(t, ln.Close())
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			require.NoError(t, c.Close())
		}
	})
	u := &url.URL{Scheme: "smtp", Host: ln.Addr().String()}

	t.Run("Timeout", func(t *testing.T) {
		mailer := mailTestMailer(t, SMTPConfig{URL: u, Timeout: 300 * time.Millisecond})
		start := time.Now()
		err := mailer.Send(context.Background(), Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
		elapsed := time.Since(start)
		require.Error(t, err)
		assert.True(t, autherr.IsUnavailable(err), "got %v", err)
		assert.GreaterOrEqual(t, elapsed, 250*time.Millisecond)
		assert.Less(t, elapsed, 10*time.Second, "Timeout respected: a silent relay would hold it forever")
	})
	t.Run("context", func(t *testing.T) {
		mailer := mailTestMailer(t, SMTPConfig{URL: u, Timeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := mailer.Send(ctx, Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
		require.Error(t, err)
		assert.True(t, autherr.IsUnavailable(err), "got %v", err)
		assert.Less(t, time.Since(start), 10*time.Second, "the caller's deadline is respected (Timeout is a minute)")
	})
}

func TestSMTPMailerRelayRefusesIsUnavailable(t *testing.T) {
	for _, code := range []int{451, 550} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := mailtest.NewServer(t)
			srv.RejectNext(code)
			mailer := mailTestMailer(t, SMTPConfig{URL: srv.URL()})
			err := mailer.Send(context.Background(), Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
			require.Error(t, err)
			assert.True(t, autherr.IsUnavailable(err), "got %v", err)
			assert.Empty(t, srv.Messages())
		})
	}
}

func TestMailHeaderInjectionRefused(t *testing.T) {
	srv := mailtest.NewServer(t)
	smtpMailer := mailTestMailer(t, SMTPConfig{URL: srv.URL()})
	var logs bytes.Buffer
	logMailer := LogMailer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	good := Verification(mailTestLinks(t), "alice@example.com", "tok", time.Hour)

	tests := []struct {
		name string
		edit func(m *Message)
	}{
		{"CRLF Bcc in To", func(m *Message) { m.To = "alice@example.com\r\nBcc: eve@example.com" }},
		{"LF in To", func(m *Message) { m.To = "alice@example.com\nBcc: eve@example.com" }},
		{"CR in To", func(m *Message) { m.To = "alice@example.com\rBcc: eve@example.com" }},
		{"NUL in To", func(m *Message) { m.To = "alice@example.com\x00" }},
		{"CRLF in Subject", func(m *Message) { m.Subject = "Hi\r\nBcc: eve@example.com" }},
		{"LF in Subject", func(m *Message) { m.Subject = "Hi\nX-Evil: 1" }},
		{"line separator in Subject", func(m *Message) { m.Subject = "Hi\u2028there" }},
		{"two recipients", func(m *Message) { m.To = "alice@example.com, eve@example.com" }},
		{"not an address", func(m *Message) { m.To = "alice" }},
		{"empty To", func(m *Message) { m.To = "" }},
		{"empty text", func(m *Message) { m.Text = " \n" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			tc.edit(&m)
			for name, mailer := range map[string]Mailer{"smtp": smtpMailer, "log": logMailer} {
				err := mailer.Send(context.Background(), m)
				require.Error(t, err, "%s mailer, message %+v", name, m)
				assert.Equal(t, autherr.Internal, autherr.CodeOf(err), "%s mailer: a bad message is the caller's bug, not an outage", name)
			}
		})
	}
	require.NoError(t, smtpMailer.Send(context.Background(), good), "control: the unedited message goes through")
	got := srv.Messages()
	require.Len(t, got, 1, "only the control mail was delivered")
	assert.Equal(t, []string{"alice@example.com"}, got[0].To)
	assert.NotContains(t, logs.String(), "eve@example.com")
}

func TestNewSMTPMailerConfig(t *testing.T) {
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	bad := []struct {
		name string
		cfg  SMTPConfig
	}{
		{"nil URL", SMTPConfig{}},
		{"wrong scheme", SMTPConfig{URL: mustURL("http://user:hunter2@mail.example.com")}},
		{"no host", SMTPConfig{URL: mustURL("smtp://user:hunter2@:25")}},
		{"port zero", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com:0")}},
		{"port too big", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com:70000")}},
		{"path", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com/x")}},
		{"unknown parameter", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com?tls=on")}},
		{"misspelt starttls", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com?starttls=require")}},
		{"starttls twice", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com?starttls=required&starttls=required")}},
		{"starttls with smtps", SMTPConfig{URL: mustURL("smtps://user:hunter2@mail.example.com?starttls=required")}},
		{"password without user", SMTPConfig{URL: mustURL("smtp://:hunter2@mail.example.com")}},
		{"bad From", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com"), From: "not an address"}},
		{"From with CRLF", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com"), From: "a@example.com\r\nBcc: eve@example.com"}},
		{"negative Timeout", SMTPConfig{URL: mustURL("smtp://user:hunter2@mail.example.com"), Timeout: -time.Second}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewSMTP(tc.cfg)
			require.Error(t, err, "config %+v", tc.cfg)
			assert.Nil(t, m)
			assert.NotContains(t, err.Error(), "hunter2", "the password never shows in errors")
		})
	}

	good := []struct {
		url         string
		wantPort    int
		wantTLS     bool
		wantAuth    bool
		wantDisplay string
	}{
		{"smtp://mail.example.com", 587, false, false, "smtp://mail.example.com:587"},
		{"smtp://user:hunter2@mail.example.com:2525?starttls=required", 2525, false, true, "smtp://mail.example.com:2525"},
		{"smtp://user:hunter2@mail.example.com?starttls=opportunistic", 587, false, true, "smtp://mail.example.com:587"},
		{"SMTPS://user:hunter2@mail.example.com", 465, true, true, "smtps://mail.example.com:465"},
		{"smtps://user@[::1]:1465/", 1465, true, true, "smtps://[::1]:1465"},
	}
	for _, tc := range good {
		t.Run(tc.url, func(t *testing.T) {
			m, err := NewSMTP(SMTPConfig{URL: mustURL(tc.url)})
			require.NoError(t, err)
			assert.Equal(t, tc.wantPort, m.port)
			assert.Equal(t, tc.wantTLS, m.implicitTLS)
			assert.Equal(t, tc.wantAuth, m.newAuth != nil)
			assert.Equal(t, tc.wantDisplay, m.display)
			assert.Equal(t, "no-reply@localhost", m.from, "documented default")
			assert.Equal(t, 10*time.Second, m.timeout, "documented default")
			assert.Equal(t, mustURL(tc.url).Hostname(), m.tlsConfig.ServerName)
			assert.NotContains(t, fmt.Sprintf("%+v %#v", m, m), "hunter2", "printing the mailer shows no password")
		})
	}
}

// The whole path through go-mail: a relay without STARTTLS that this mailer
// believes is remote gets no credentials and no mail.
func TestSMTPMailerWithholdsCredentialsInClearText(t *testing.T) {
	srv := mailtest.NewServer(t)
	mailer := mailTestMailer(t, SMTPConfig{URL: srv.URL()})
	require.NotNil(t, mailer.newAuth)
	// mailtest listens on loopback only; pretend its address is remote.
	mailer.newAuth = func() gosmtp.Auth { return &mailAuth{user: "user", pass: "pass", loopback: false} }

	err := mailer.Send(context.Background(), Verification(mailTestLinks(t), "a@example.com", "tok", time.Hour))
	require.ErrorIs(t, err, errMailClearTextAuth)
	assert.True(t, autherr.IsUnavailable(err), "got %v", err)
	assert.Empty(t, srv.Messages())
}

func TestMailAuthRefusesClearTextToRemoteHost(t *testing.T) {
	tests := []struct {
		name     string
		loopback bool
		info     gosmtp.ServerInfo
		wantMech string // "" means refused
	}{
		{"clear text, remote host", false, gosmtp.ServerInfo{Name: "mail.example.com", Auth: []string{"PLAIN", "LOGIN"}}, ""},
		{"clear text, loopback", true, gosmtp.ServerInfo{Name: "127.0.0.1", Auth: []string{"PLAIN"}}, "PLAIN"},
		{"TLS, remote host", false, gosmtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"LOGIN", "PLAIN"}}, "PLAIN"},
		{"TLS, only LOGIN", false, gosmtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"login"}}, "LOGIN"},
		{"TLS, no usable mechanism", false, gosmtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"CRAM-MD5"}}, ""},
		{"TLS, no AUTH offered", false, gosmtp.ServerInfo{Name: "mail.example.com", TLS: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &mailAuth{user: "u", pass: "p", loopback: tc.loopback}
			info := tc.info
			mech, resp, err := a.Start(&info)
			if tc.wantMech == "" {
				require.Error(t, err, "server %+v", tc.info)
				assert.Empty(t, resp, "no credentials sent")
				return
			}
			require.NoError(t, err, "server %+v", tc.info)
			assert.Equal(t, tc.wantMech, mech)
		})
	}
	assert.ErrorIs(t, func() error { _, _, err := (&mailAuth{}).Start(&gosmtp.ServerInfo{Name: "x"}); return err }(), errMailClearTextAuth)

	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"mail.example.com": false, "10.0.0.1": false, "localhost.example.com": false, "::": false,
	} {
		assert.Equal(t, want, mailIsLoopback(host), "mailIsLoopback(%q)", host)
	}
}

func TestLinksURL(t *testing.T) {
	tests := []struct {
		base, path, token, want string
	}{
		{"https://auth.example.com/app", "verify-email", "abc_DEF-123", "https://auth.example.com/app/verify-email?token=abc_DEF-123"},
		{"https://auth.example.com/app/", "verify-email", "abc", "https://auth.example.com/app/verify-email?token=abc"},
		{"https://auth.example.com", "reset-password", "abc", "https://auth.example.com/reset-password?token=abc"},
		{"http://localhost:8080", "accept-invitation", "abc", "http://localhost:8080/accept-invitation?token=abc"},
		{"https://auth.example.com/app", "verify-email", "a+b/c=&x=y #", "https://auth.example.com/app/verify-email?token=a%2Bb%2Fc%3D%26x%3Dy+%23"},
		{"https://u:p@auth.example.com/app?x=1#frag", "verify-email", "abc", "https://auth.example.com/app/verify-email?token=abc"},
	}
	for _, tc := range tests {
		t.Run(tc.base+" "+tc.path, func(t *testing.T) {
			u, err := url.Parse(tc.base)
			require.NoError(t, err)
			got := Links{BaseURL: u}.URL(tc.path, tc.token)
			assert.Equal(t, tc.want, got, "base %q path %q token %q", tc.base, tc.path, tc.token)
			parsed, err := url.Parse(got)
			require.NoError(t, err)
			assert.Equal(t, tc.token, parsed.Query().Get("token"), "the token survives the round trip")
			assert.Equal(t, tc.base, u.String(), "BaseURL is not modified")
		})
	}
	assert.Panics(t, func() { _ = Links{}.URL("verify-email", "abc") }, "no base URL: no link to nowhere")
}

func TestMailBuildersHaveExactlyOneLink(t *testing.T) {
	links := mailTestLinks(t)
	token := mailTestToken(t)
	tests := []struct {
		name, path, ttlText string
		msg                 Message
	}{
		{"verification", "verify-email", "24 hours", Verification(links, "a@example.com", token, 24*time.Hour)},
		{"password reset", "reset-password", "1 hour", PasswordReset(links, "a@example.com", token, time.Hour)},
		{"email change", "confirm-email-change", "90 minutes", EmailChange(links, "a@example.com", token, 90*time.Minute)},
		{"invitation", "accept-invitation", "7 days", Invitation(links, "a@example.com", "Family", "Bob", token, 7*24*time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := links.URL(tc.path, token)
			assert.Equal(t, []string{want}, mailLinkPattern.FindAllString(tc.msg.Text, -1), "text: exactly one link, the right one")
			assert.Equal(t, 1, strings.Count(tc.msg.HTML, "http"), "html: exactly one link:\n%s", tc.msg.HTML)
			assert.Equal(t, 1, strings.Count(tc.msg.HTML, `href="`+want+`"`))
			assert.Equal(t, token, mailtest.TokenFromText(t, tc.msg.Text, tc.path))
			assert.Equal(t, "a@example.com", tc.msg.To)
			assert.NotEmpty(t, tc.msg.Subject)
			assert.NoError(t, mailValidate(tc.msg))
			assert.Contains(t, tc.msg.Text, "expires in "+tc.ttlText)
		})
	}
}

func TestInvitationMailHostileNames(t *testing.T) {
	links := mailTestLinks(t)
	m := Invitation(links, "a@example.com", "<script>x</script>\r\nBcc: eve@example.com\u202E", "Bob\x00 \t Smith "+strings.Repeat("x", 200), "tok", time.Hour)
	require.NoError(t, mailValidate(m), "the subject stays one line")
	assert.NotContains(t, m.Subject, "\u202E")
	assert.NotContains(t, m.HTML, "<script>")
	assert.Contains(t, m.HTML, "&lt;script&gt;")
	assert.Contains(t, m.Text, "Bob Smith xxx")
	assert.LessOrEqual(t, len([]rune(m.Subject)), 200)

	empty := Invitation(links, "a@example.com", " ", "", "tok", time.Hour)
	assert.Equal(t, "Someone invited you to “a space”", empty.Subject)
}

func TestMailDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7 * 24 * time.Hour: "7 days",
		48 * time.Hour:     "2 days",
		36 * time.Hour:     "36 hours",
		24 * time.Hour:     "24 hours",
		time.Hour:          "1 hour",
		90 * time.Minute:   "90 minutes",
		15 * time.Minute:   "15 minutes",
		time.Minute:        "1 minute",
		10 * time.Second:   "1 minute",
		61 * time.Second:   "1 minute",
	} {
		assert.Equal(t, want, mailDuration(d), "mailDuration(%v)", d)
	}
}

func TestLogMailerLogsLinkAndRecipientOnly(t *testing.T) {
	var buf bytes.Buffer
	mailer := LogMailer{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	token := mailTestToken(t)
	msg := PasswordReset(mailTestLinks(t), "alice@example.com", token, time.Hour)
	msg.Text += "\nPRIVATE-BODY-TEXT\n"
	msg.HTML += "<p>PRIVATE-HTML</p>"

	require.NoError(t, mailer.Send(context.Background(), msg))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1, "one log line: %s", buf.String())
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	assert.Equal(t, "INFO", rec["level"])
	assert.Equal(t, "alice@example.com", rec["to"])
	assert.Equal(t, msg.Subject, rec["subject"])
	assert.Equal(t, []any{"https://auth.example.com/app/reset-password?token=" + token}, rec["links"])
	assert.NotContains(t, buf.String(), "PRIVATE-BODY-TEXT")
	assert.NotContains(t, buf.String(), "PRIVATE-HTML")
	assert.NotContains(t, buf.String(), "Someone asked", "no other body text")
}

// TestPasskeyAddedNotice: the notice says when and with what, carries no
// link, and cleans the provider name like any other shown name. A notice
// with a link (or a user-chosen name) would be a template for phishing.
func TestPasskeyAddedNotice(t *testing.T) {
	at := time.Date(2026, 1, 2, 16, 4, 0, 0, time.FixedZone("CET", 3600))
	m := PasskeyAdded("a@example.com", "iCloud Keychain", at)
	require.NoError(t, mailValidate(m))
	assert.Equal(t, "a@example.com", m.To)
	assert.Equal(t, "A passkey was added to your account", m.Subject)
	assert.Contains(t, m.Text, "A passkey was added to your account (iCloud Keychain) on 2 January 2026 at 15:04 UTC.")
	assert.Contains(t, m.HTML, "(iCloud Keychain) on 2 January 2026 at 15:04 UTC.")
	for _, part := range []string{m.Text, m.HTML} {
		assert.NotContains(t, part, "http", "no link")
	}

	unknown := PasskeyAdded("a@example.com", "", at)
	assert.Contains(t, unknown.Text, "A passkey was added to your account on 2 January")

	hostile := PasskeyAdded("a@example.com", "<b>x</b>\u202E\r\nBcc: e@example.com", at)
	require.NoError(t, mailValidate(hostile))
	assert.NotContains(t, hostile.HTML, "<b>")
	assert.NotContains(t, hostile.Text, "\u202E")
	assert.NotContains(t, hostile.Text, "\r")
}

func TestMFANoticesCarryNoLink(t *testing.T) {
	for name, m := range map[string]Message{
		"enabled":        MFAEnabled("a@example.com"),
		"disabled":       MFADisabled("a@example.com"),
		"recovery used":  MFARecoveryCodeUsed("a@example.com", 3),
		"recovery last":  MFARecoveryCodeUsed("a@example.com", 1),
		"recovery spent": MFARecoveryCodeUsed("a@example.com", 0),
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, mailValidate(m))
			assert.Equal(t, "a@example.com", m.To)
			assert.NotEmpty(t, m.Subject)
			// A notice with a link would teach users to follow links in
			// security mails, which is what phishing imitates.
			assert.Empty(t, mailLinkPattern.FindAllString(m.Text, -1), "text")
			assert.NotContains(t, m.HTML, "href", "html")
		})
	}
	assert.Contains(t, MFARecoveryCodeUsed("a@example.com", 3).Text, "3 recovery codes are left")
	assert.Contains(t, MFARecoveryCodeUsed("a@example.com", 1).Text, "1 recovery code is left")
	assert.Contains(t, MFARecoveryCodeUsed("a@example.com", 0).Text, "No recovery code is left")
}
