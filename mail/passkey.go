package mail

import "time"

// PasskeyAdded tells an account's address that a passkey was added to
// it: when, and by which authenticator when its model is known (provider,
// from the passkey package's AAGUID table; "" when not). Like the other
// notices it carries no link, and never the passkey's name, which whoever
// added it chose.
func PasskeyAdded(to, provider string, at time.Time) Message {
	what := "A passkey was added to your account"
	if p := mailCleanName(provider, ""); p != "" {
		what += " (" + p + ")"
	}
	return mailNotice(to, "A passkey was added to your account",
		what+" on "+mailTime(at)+".",
		"If you added it, there is nothing to do. If you did not, sign in, remove the passkey in your "+
			"account's security settings, change your password and sign out your other sessions.")
}

// mailTime renders an instant for people, in UTC: "2 January 2026 at 15:04 UTC".
func mailTime(t time.Time) string {
	return t.UTC().Format("2 January 2006 at 15:04 UTC")
}
