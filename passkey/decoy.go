package passkey

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/go-webauthn/webauthn/protocol"
)

// decoyLengths are credential id lengths real authenticators use (16 and
// 20: platform authenticators; 32: password managers, Windows Hello; 64:
// security keys), so a stand-in list is not told apart by its ids' size.
var decoyLengths = []int{16, 20, 32, 64}

// decoyTransports are transport lists browsers report, likewise.
var decoyTransports = [][]protocol.AuthenticatorTransport{
	{"hybrid", "internal"},
	{"internal"},
	{"usb"},
	{"nfc", "usb"},
	nil,
}

// decoy is the stand-in of an address without passkeys (no account, or
// an account without any): a user handle and one or two credential
// descriptors derived from the address with HMAC-SHA256 under key, so the
// same address always gets the same list, on every instance, while the
// list says nothing about whether the account exists. No authenticator
// holds these credentials, so a sign-in with them fails like one with any
// unknown credential.
func decoy(key []byte, email string) (handle []byte, allow []protocol.CredentialDescriptor) {
	mac := func(label string, i byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("mana-auth passkey decoy v1\x00" + label + "\x00"))
		m.Write([]byte{i})
		m.Write([]byte(email))
		return m.Sum(nil)
	}
	seed := mac("shape", 0)
	handle = mac("user", 0)[:16]
	n := 1 + int(seed[0]%2)
	for i := range n {
		length := decoyLengths[int(seed[1+2*i])%len(decoyLengths)]
		id := make([]byte, 0, length)
		for block := byte(0); len(id) < length; block++ {
			id = append(id, mac("credential", byte(i)<<4|block)...)
		}
		allow = append(allow, protocol.CredentialDescriptor{
			Type:         protocol.PublicKeyCredentialType,
			CredentialID: id[:length],
			Transport:    decoyTransports[int(seed[2+2*i])%len(decoyTransports)],
		})
	}
	return handle, allow
}
