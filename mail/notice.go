package mail

import (
	"html"
	"strings"
	"time"
)

// PasskeyAdded tells an account's address that a passkey was added to
// it: when, and by which authenticator when its model is known (provider,
// from the AAGUID table; "" when not). It carries no link — a notice that
// asks for nothing is no template for phishing — and never the passkey's
// name, which whoever added it chose.
func PasskeyAdded(to, provider string, at time.Time) Message {
	what := "A passkey was added to your account"
	if p := mailCleanName(provider, ""); p != "" {
		what += " (" + p + ")"
	}
	return mailNotice(to, "A passkey was added to your account", []string{
		what + " on " + mailTime(at) + ".",
		"If you added it, there is nothing to do. If you did not, sign in, remove the passkey in your " +
			"account's security settings, change your password and sign out your other sessions.",
	})
}

// mailTime renders an instant for people, in UTC: "2 January 2026 at 15:04 UTC".
func mailTime(t time.Time) string {
	return t.UTC().Format("2 January 2006 at 15:04 UTC")
}

// mailNotice renders a notice without a link: paragraphs as plain text
// and as simple HTML.
func mailNotice(to, subject string, paragraphs []string) Message {
	var text, h strings.Builder
	text.WriteString("Hello,\n\n")
	e := html.EscapeString
	h.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + e(subject) + "</title></head><body>\n")
	h.WriteString("<p>Hello,</p>\n")
	for _, p := range paragraphs {
		text.WriteString(p + "\n\n")
		h.WriteString("<p>" + e(p) + "</p>\n")
	}
	h.WriteString("</body></html>\n")
	return Message{To: to, Subject: subject, Text: strings.TrimSuffix(text.String(), "\n"), HTML: h.String()}
}
