// Package mail sends the mails of mana-auth: the Mailer interface, an SMTP
// mailer (go-mail; STARTTLS or implicit TLS, credentials never in clear
// text to a remote host), a development LogMailer, the text of every mail
// (verification, password reset, email change, invitation) with links
// built only from the configured base URL, an Outbox that sends in the
// background, and the canonical form of an address.
//
// # Typical flow
//
//	m, _ := mail.NewSMTP(mail.SMTPConfig{URL: smtpURL, From: "Mana <no-reply@example.com>"})
//	links := mail.Links{BaseURL: base} // MANA_AUTH_BASE_URL, never the request's Host
//	out := mail.NewOutbox(m, logger, failures.Inc)
//	out.Post(ctx, "verification", mail.Verification(links, to, token, 24*time.Hour))
//	defer out.Close() // waits for mails being sent
//
// # Decisions
//
// A Mailer refuses a recipient or subject with a control character (no
// header injection) and never logs a body: bodies carry single-use tokens.
// An unreachable or refusing relay is SERVICE_UNAVAILABLE. Every mail has
// a plain-text part with exactly one link and a simple HTML alternative.
package mail
