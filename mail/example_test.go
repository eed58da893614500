package mail_test

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mana-how/mana-auth/mail"
)

// Every mail carries one link built from the configured base URL (never
// from a request's Host header).
func ExampleVerification() {
	base, _ := url.Parse("https://app.example.com/auth")
	m := mail.Verification(mail.Links{BaseURL: base}, "alice@example.com", "tok-123", 24*time.Hour)
	fmt.Println(m.Subject)
	for line := range strings.Lines(m.Text) {
		if strings.HasPrefix(line, "https://") {
			fmt.Print(line)
		}
	}
	// Output:
	// Confirm your email address
	// https://app.example.com/auth/verify-email?token=tok-123
}

func ExampleCanonical() {
	e, err := mail.Canonical("email", "  Alice@Example.COM ")
	fmt.Println(e, err)
	_, err = mail.Canonical("email", "Alice <alice@example.com>")
	fmt.Println(err != nil)
	// Output:
	// alice@example.com <nil>
	// true
}
