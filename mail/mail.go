package mail

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/mana-how/mana-auth/autherr"
)

// Message is one mail: plain text always, HTML optional.
//
// To is a single address ("alice@example.com" or "Alice <alice@example.com>")
// and Subject a single line: a Mailer refuses either when it holds a CR, LF or
// another control character, so neither can inject headers. Text and HTML
// carry single-use tokens: no Mailer logs them.
type Message struct {
	To, Subject, Text, HTML string
}

// Mailer sends mail.
//
// Send returns nil once the relay has accepted the message. It returns an
// *autherr.Error with code SERVICE_UNAVAILABLE when the relay cannot be
// reached, times out or refuses the message (check with
// autherr.IsUnavailable), and one with code INTERNAL when the message itself
// is unusable (an invalid or multi-line To, a multi-line Subject, an empty
// Text) — that is a bug in the caller, which must validate addresses first.
// Send never logs the message body: it carries tokens.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

var (
	_ Mailer = (*SMTP)(nil)
	_ Mailer = LogMailer{}
)

// LogMailer is the development Mailer: it sends nothing and logs, at info
// level, the recipient, the subject and the links found in the text.
//
// DEVELOPMENT ONLY. The logged links carry live single-use tokens
// (verification, password reset, email change, invitation): anyone who can
// read the log can take over the account the mail was meant for. Never use
// LogMailer where real users sign up; configure an SMTP instead.
//
// A nil Logger logs to slog.Default().
type LogMailer struct {
	Logger *slog.Logger
}

// Send validates m like SMTP does (INTERNAL on a bad To or Subject)
// and logs "mail not sent (development mailer)" with to, subject and links.
// No other part of the body is logged.
func (m LogMailer) Send(ctx context.Context, msg Message) error {
	if err := mailValidate(msg); err != nil {
		return err
	}
	logger := m.Logger
	if logger == nil {
		logger = slog.Default()
	}
	links := mailLinkPattern.FindAllString(msg.Text, -1)
	logger.InfoContext(ctx, "mail not sent (development mailer; links carry live tokens)",
		slog.String("to", msg.To),
		slog.String("subject", msg.Subject),
		slog.Any("links", links),
	)
	return nil
}

// mailLinkPattern finds the http(s) links in a plain text body.
var mailLinkPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

// mailValidate refuses a message that could inject headers or has nothing
// to send. The returned error is INTERNAL: callers validate addresses before
// they build a mail.
func mailValidate(msg Message) error {
	var problem string
	switch {
	case msg.To == "":
		problem = "recipient is empty"
	case mailHasControl(msg.To):
		problem = "recipient contains a control character (CR, LF, …)"
	case mailHasControl(msg.Subject):
		problem = "subject contains a control character (CR, LF, …)"
	case strings.TrimSpace(msg.Text) == "":
		problem = "text body is empty"
	}
	if problem == "" {
		if _, err := netmail.ParseAddress(msg.To); err != nil {
			return autherr.Wrap(autherr.Internal, fmt.Errorf("mail: mail: invalid recipient: %w", err), "")
		}
		return nil
	}
	return autherr.Wrap(autherr.Internal, errors.New("mail: mail: "+problem), "")
}

// mailHasControl reports whether s holds a control character (CR, LF, NUL,
// TAB, DEL, C1 controls) or a Unicode line or paragraph separator.
func mailHasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}) >= 0
}

// Links builds the links of mails from the configured public base URL —
// never from a request's Host header, which a client controls.
//
// BaseURL is the public URL of the auth service (MANA_AUTH_BASE_URL), may
// carry a path prefix (https://example.com/auth) and must not be nil: the
// service that owns a Links validates it at construction.
type Links struct {
	BaseURL *url.URL
}

// URL returns "<BaseURL>/<path>?token=<token>" with the token query-escaped
// (tokens are URL-safe base64, so escaping changes nothing for them). The
// base's query, fragment and user info are dropped. URL panics when BaseURL
// is nil: a link without a base would send users nowhere.
func (l Links) URL(path, token string) string {
	if l.BaseURL == nil {
		panic("mail: Links.BaseURL is nil")
	}
	u := l.BaseURL.JoinPath(path) // #nosec G125 -- path is one of the package's page paths, never request input
	u.User = nil
	u.RawQuery = "token=" + url.QueryEscape(token)
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// Paths of the links in mails, relative to Links.BaseURL. The page there
// reads the token from the query and posts it to the matching endpoint.
const (
	mailPathVerify     = "verify-email"
	mailPathReset      = "reset-password"
	mailPathEmail      = "confirm-email-change"
	mailPathInvitation = "accept-invitation"
)

// Verification is the mail that confirms a new account's address; its one
// link is <base>/verify-email?token=<token>.
func Verification(l Links, to, token string, ttl time.Duration) Message {
	return mailCompose(to, "Confirm your email address", mailBody{
		intro:  "Please confirm your email address by opening this link:",
		button: "Confirm email address",
		link:   l.URL(mailPathVerify, token),
		ttl:    ttl,
		outro:  "If you did not create an account, you can ignore this mail.",
	})
}

// PasswordReset is the mail that lets a user set a new password; its one
// link is <base>/reset-password?token=<token>.
func PasswordReset(l Links, to, token string, ttl time.Duration) Message {
	return mailCompose(to, "Reset your password", mailBody{
		intro:  "Someone asked to reset the password of your account. To choose a new password, open this link:",
		button: "Reset password",
		link:   l.URL(mailPathReset, token),
		ttl:    ttl,
		outro:  "If you did not ask for this, ignore this mail: your password stays as it is.",
	})
}

// EmailChange goes to the new address of an email change; its one link is
// <base>/confirm-email-change?token=<token>.
func EmailChange(l Links, to, token string, ttl time.Duration) Message {
	return mailCompose(to, "Confirm your new email address", mailBody{
		intro:  "Please confirm that this is the new email address of your account by opening this link:",
		button: "Confirm new email address",
		link:   l.URL(mailPathEmail, token),
		ttl:    ttl,
		outro:  "If you did not ask for this change, ignore this mail: your account keeps its current address.",
	})
}

// Invitation invites to into a space; its one link is
// <base>/accept-invitation?token=<token>. spaceName and inviter are
// user-chosen: control and bidirectional-override characters are removed,
// runs of white space collapsed, each cut to 80 characters, and the HTML
// part escapes them. They are still shown as written, so the service that
// accepts space and user names should refuse names that look like links.
func Invitation(l Links, to, spaceName, inviter, token string, ttl time.Duration) Message {
	space := mailCleanName(spaceName, "a space")
	who := mailCleanName(inviter, "Someone")
	return mailCompose(to, who+" invited you to “"+space+"”", mailBody{
		intro:  who + " invited you to join the space “" + space + "”. To accept the invitation, open this link:",
		button: "Accept invitation",
		link:   l.URL(mailPathInvitation, token),
		ttl:    ttl,
		outro:  "If you do not want to join, ignore this mail.",
	})
}

// mailBody is the shape every mail of this package shares.
type mailBody struct {
	intro, button, link, outro string
	ttl                        time.Duration
}

// mailCompose renders b as plain text with the bare link and as simple HTML
// with the link once, in an anchor.
func mailCompose(to, subject string, b mailBody) Message {
	expiry := ""
	if b.ttl > 0 {
		expiry = "The link expires in " + mailDuration(b.ttl) + " and works once."
	}
	var text strings.Builder
	text.WriteString("Hello,\n\n")
	text.WriteString(b.intro + "\n\n")
	text.WriteString(b.link + "\n\n")
	if expiry != "" {
		text.WriteString(expiry + "\n")
	}
	text.WriteString(b.outro + "\n")

	e := html.EscapeString
	var h strings.Builder
	h.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + e(subject) + "</title></head><body>\n")
	h.WriteString("<p>Hello,</p>\n")
	h.WriteString("<p>" + e(b.intro) + "</p>\n")
	h.WriteString("<p><a href=\"" + e(b.link) + "\">" + e(b.button) + "</a></p>\n")
	if expiry != "" {
		h.WriteString("<p>" + e(expiry) + "</p>\n")
	}
	h.WriteString("<p>" + e(b.outro) + "</p>\n</body></html>\n")

	return Message{To: to, Subject: subject, Text: text.String(), HTML: h.String()}
}

// mailDuration renders a link lifetime for people: "7 days", "24 hours",
// "1 hour", "15 minutes"; below a minute it says "1 minute".
func mailDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	const day = 24 * time.Hour
	if d >= 2*day && d%day == 0 {
		return unit(int64(d/day), "day")
	}
	if d >= time.Hour && d%time.Hour == 0 {
		return unit(int64(d/time.Hour), "hour")
	}
	minutes := int64(d.Round(time.Minute) / time.Minute)
	if minutes < 1 {
		minutes = 1
	}
	return unit(minutes, "minute")
}

// mailCleanName makes a user-chosen name safe for a subject line and a
// sentence: no control or bidi-override characters, single spaces, at most
// 80 characters; fallback when nothing is left.
func mailCleanName(s, fallback string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), unicode.IsControl(r):
			return ' '
		case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069', r == '\u200E', r == '\u200F':
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		s = strings.TrimSpace(string(r[:79])) + "…"
	}
	if s == "" {
		return fallback
	}
	return s
}
