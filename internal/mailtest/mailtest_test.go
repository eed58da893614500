package mailtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netsmtp "net/smtp"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTB records a Fatalf and ends the goroutine, as testing does.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// runFake runs fn with a fakeTB in its own goroutine and returns it.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

const multipartQP = "From: Auth <auth@example.com>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=\"B1\"\r\n" +
	"\r\n" +
	"--B1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Open https://auth.example.com/app/verify-email?token=3DabcDEF_-0123456789abcdefghijk=\r\n" +
	"lmn now. Sch=C3=B6n.\r\n" +
	"--B1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"<p>Sch=C3=B6n</p>\r\n" +
	"--B1--\r\n"

func TestMailServerReceivesMultipartQuotedPrintable(t *testing.T) {
	srv := NewServer(t)
	auth := netsmtp.PlainAuth("", "someone", "anything", "127.0.0.1")
	require.NoError(t, netsmtp.SendMail(srv.Addr(), auth, "auth@example.com", []string{"alice@example.com"}, []byte(multipartQP)))

	m := srv.WaitFor(t, "Alice@Example.com", 5*time.Second)
	assert.Equal(t, "auth@example.com", m.From)
	assert.Equal(t, []string{"alice@example.com"}, m.To)
	assert.Equal(t, "Grüße", m.Subject)
	assert.Equal(t, "Open https://auth.example.com/app/verify-email?token=abcDEF_-0123456789abcdefghijklmn now. Schön.", strings.TrimSpace(m.Text))
	assert.Equal(t, "<p>Schön</p>", strings.TrimSpace(m.HTML))
	assert.Equal(t, "someone", m.AuthUser, "any credentials are accepted and recorded")
	assert.False(t, m.TLS)
	assert.Contains(t, string(m.Data), "Content-Transfer-Encoding: quoted-printable")
	assert.Equal(t, "abcDEF_-0123456789abcdefghijklmn", TokenFromText(t, m.Text, "verify-email"))
	require.Len(t, srv.Messages(), 1)
}

func TestMailServerReceivesBase64SinglePart(t *testing.T) {
	srv := NewServer(t)
	data := "From: a@example.com\r\nTo: b@example.com\r\nSubject: plain\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"aGVsbG8g\r\nd29ybGQ=\r\n"
	require.NoError(t, netsmtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte(data)))
	m := srv.WaitFor(t, "b@example.com", 5*time.Second)
	assert.Equal(t, "hello world", m.Text)
	assert.Equal(t, "plain", m.Subject)
	assert.Empty(t, m.AuthUser, "no AUTH was sent")
}

func TestMailServerCredentials(t *testing.T) {
	srv := NewServer(t, WithCredentials("smtp-user", "s3cret"))
	u := srv.URL()
	pass, _ := u.User.Password()
	assert.Equal(t, "smtp-user", u.User.Username())
	assert.Equal(t, "s3cret", pass)
	assert.Equal(t, "smtp", u.Scheme)

	msg := []byte("Subject: x\r\n\r\nbody\r\n")
	tests := []struct {
		name    string
		auth    netsmtp.Auth
		wantErr bool
	}{
		{"right credentials", netsmtp.PlainAuth("", "smtp-user", "s3cret", "127.0.0.1"), false},
		{"wrong password", netsmtp.PlainAuth("", "smtp-user", "nope", "127.0.0.1"), true},
		{"no AUTH", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := netsmtp.SendMail(srv.Addr(), tc.auth, "a@example.com", []string{strings.ReplaceAll(tc.name, " ", "-") + "@example.com"}, msg)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
		})
	}
	got := srv.Messages()
	require.Len(t, got, 1, "only the authenticated mail arrives")
	assert.Equal(t, "smtp-user", got[0].AuthUser)
}

func TestMailServerRejectNext(t *testing.T) {
	srv := NewServer(t)
	msg := []byte("Subject: x\r\n\r\nbody\r\n")
	srv.RejectNext(451)
	err := netsmtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, msg)
	var te *textproto.Error
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 451, te.Code)
	assert.Empty(t, srv.Messages())

	require.NoError(t, netsmtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, msg), "only the next one is rejected")
	assert.Len(t, srv.Messages(), 1)
}

func TestMailServerClose(t *testing.T) {
	srv := NewServer(t)
	addr := srv.Addr()
	srv.Close()
	srv.Close() // twice is fine
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	require.Error(t, err, "a closed server refuses connections")
}

func TestMailServerSTARTTLS(t *testing.T) {
	serverTLS, clientTLS := SelfSignedTLS(t)
	srv := NewServer(t, WithSTARTTLS(serverTLS))
	c, err := netsmtp.Dial(srv.Addr())
	require.NoError(t, err)
	defer c.Close()
	ok, _ := c.Extension("STARTTLS")
	require.True(t, ok, "STARTTLS offered")
	cfg := clientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	require.NoError(t, c.StartTLS(cfg))
	require.NoError(t, c.Mail("a@example.com"))
	require.NoError(t, c.Rcpt("b@example.com"))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write([]byte("Subject: tls\r\n\r\nsecret body\r\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, c.Quit())

	m := srv.WaitFor(t, "b@example.com", 5*time.Second)
	assert.True(t, m.TLS)
	assert.Equal(t, "secret body\r\n", m.Text)
}

func TestMailServerImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := SelfSignedTLS(t)
	srv := NewServer(t, WithImplicitTLS(serverTLS))
	assert.Equal(t, "smtps", srv.URL().Scheme)
	cfg := clientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.Dial("tcp", srv.Addr(), cfg)
	require.NoError(t, err)
	c, err := netsmtp.NewClient(conn, "127.0.0.1")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Auth(netsmtp.PlainAuth("", "u", "p", "127.0.0.1")))
	require.NoError(t, c.Mail("a@example.com"))
	require.NoError(t, c.Rcpt("b@example.com"))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write([]byte("Subject: tls\r\n\r\nhi\r\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, c.Quit())

	m := srv.WaitFor(t, "b@example.com", 5*time.Second)
	assert.True(t, m.TLS)
	assert.Equal(t, "u", m.AuthUser)
}

func TestMailServerWaitFor(t *testing.T) {
	srv := NewServer(t)
	send := func(to, subject string) {
		t.Helper()
		require.NoError(t, netsmtp.SendMail(srv.Addr(), nil, "a@example.com", []string{to}, []byte("Subject: "+subject+"\r\n\r\nx\r\n")))
	}
	send("b@example.com", "first")
	send("c@example.com", "other")
	send("b@example.com", "second")
	assert.Equal(t, "first", srv.WaitFor(t, "b@example.com", time.Second).Subject)
	assert.Equal(t, "second", srv.WaitFor(t, "b@example.com", time.Second).Subject, "each mail is returned once")

	go func() {
		time.Sleep(50 * time.Millisecond)
		if err := netsmtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"late@example.com"}, []byte("Subject: late\r\n\r\nx\r\n")); err != nil {
			t.Errorf("send late mail: %v", err)
		}
	}()
	assert.Equal(t, "late", srv.WaitFor(t, "late@example.com", 5*time.Second).Subject, "waits for a mail still on its way")

	start := time.Now()
	f := runFake(t, func(tb testing.TB) { srv.WaitFor(tb, "b@example.com", 100*time.Millisecond) })
	assert.True(t, f.failed, "no third mail to b: WaitFor fails the test")
	assert.Contains(t, f.msg, "b@example.com")
	assert.Less(t, time.Since(start), 30*time.Second, "WaitFor gives up after its wait instead of hanging")
}

func TestMailTokenFromText(t *testing.T) {
	tests := []struct {
		name, text, path string
		want             string
		wantFail         bool
	}{
		{"plain", "Open https://x.example/verify-email?token=abc_DEF-123 now", "verify-email", "abc_DEF-123", false},
		{"path prefix", "https://x.example/app/reset-password?token=tok\n", "reset-password", "tok", false},
		{"escaped", "https://x.example/verify-email?token=a%2Bb%3D%3D.", "verify-email", "a+b==.", false},
		{"line end", "link:\nhttps://x.example/verify-email?token=abc\r\nbye", "verify-email", "abc", false},
		{"in html attribute", `<a href="https://x.example/verify-email?token=abc">`, "verify-email", "abc", false},
		{"none", "no link here", "verify-email", "", true},
		{"other path", "https://x.example/reset-password?token=abc", "verify-email", "", true},
		{"not a path segment", "https://x.example/xverify-email?token=abc", "verify-email", "", true},
		{"two", "https://x.example/verify-email?token=a https://x.example/verify-email?token=b", "verify-email", "", true},
		{"empty token", "https://x.example/verify-email?token= ", "verify-email", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			f := runFake(t, func(tb testing.TB) { got = TokenFromText(tb, tc.text, tc.path) })
			require.Equal(t, tc.wantFail, f.failed, "text %q: failed=%v (%s)", tc.text, f.failed, f.msg)
			if !tc.wantFail {
				assert.Equal(t, tc.want, got, "text %q", tc.text)
			}
		})
	}
}

func TestMailServerRefusesUnparsableMail(t *testing.T) {
	srv := NewServer(t)
	data := "Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nbody\r\n"
	err := netsmtp.SendMail(srv.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte(data))
	var te *textproto.Error
	require.True(t, errors.As(err, &te), "got %v", err)
	assert.Equal(t, 554, te.Code)
	assert.Empty(t, srv.Messages())
}
