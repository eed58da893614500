package mail

import (
	"html"
	"strconv"
	"strings"
)

// The notices of the second factor (package mfa). They carry no link and
// no code: a notice only tells the owner of the address what happened, so
// that a change they did not make does not go unnoticed.

// MFAEnabled tells to that two-step sign-in was switched on for the
// account.
func MFAEnabled(to string) Message {
	return mailNotice(to, "Two-step sign-in is on",
		"Two-step sign-in was switched on for your account: signing in now asks for a code from your authenticator app after the password.",
		"Keep your recovery codes somewhere safe: each of them signs you in once when you do not have the app at hand.",
		mailNoticeNotYou)
}

// MFADisabled tells to that two-step sign-in was switched off for the
// account.
func MFADisabled(to string) Message {
	return mailNotice(to, "Two-step sign-in is off",
		"Two-step sign-in was switched off for your account: signing in asks only for the password again. Its recovery codes no longer work.",
		mailNoticeNotYou)
}

// MFARecoveryCodeUsed tells to that one of the account's recovery codes
// was used, and how many are left.
func MFARecoveryCodeUsed(to string, left int) Message {
	remaining := strconv.Itoa(left) + " recovery codes are left."
	switch left {
	case 0:
		remaining = "No recovery code is left: switch two-step sign-in off and on again to get new ones."
	case 1:
		remaining = "1 recovery code is left."
	}
	return mailNotice(to, "A recovery code was used",
		"One of the recovery codes of your account was used in place of a code from your authenticator app. "+remaining,
		mailNoticeNotYou)
}

const mailNoticeNotYou = "If this was not you, change your password right away: someone may know it."

// mailNotice renders a notice without links: the paragraphs as plain text
// and as simple HTML.
func mailNotice(to, subject string, paragraphs ...string) Message {
	var text, h strings.Builder
	text.WriteString("Hello,\n\n")
	h.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(subject) + "</title></head><body>\n")
	h.WriteString("<p>Hello,</p>\n")
	for _, p := range paragraphs {
		text.WriteString(p + "\n\n")
		h.WriteString("<p>" + html.EscapeString(p) + "</p>\n")
	}
	h.WriteString("</body></html>\n")
	return Message{To: to, Subject: subject, Text: strings.TrimSuffix(text.String(), "\n"), HTML: h.String()}
}
