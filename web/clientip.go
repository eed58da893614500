package web

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r.
//
// It is r.RemoteAddr, unless that address lies inside one of the trusted
// proxy prefixes. Then X-Forwarded-For is walked from the right (the entry
// the nearest proxy appended) past trusted addresses, and the first
// untrusted address is the client. A malformed entry stops the walk: the
// last trusted hop is returned, since nothing left of it can be believed.
// When every hop is trusted the leftmost one is returned. With no trusted
// prefixes (the default) the header is never believed, so a client cannot
// spoof its address.
//
// Addresses come back unmapped (::ffff:192.0.2.1 is 192.0.2.1) and without
// zone. The zero Addr is returned when RemoteAddr is not an IP address (a
// Unix socket, say); callers must treat it as "unknown", not as one client.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	remote, ok := parseHop(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !containsAddr(trusted, remote) {
		return remote
	}
	hop := remote
	lines := r.Header.Values("X-Forwarded-For")
	for i := len(lines) - 1; i >= 0; i-- {
		entries := strings.Split(lines[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, ok := parseHop(entries[j])
			if !ok {
				return hop
			}
			if !containsAddr(trusted, a) {
				return a
			}
			hop = a
		}
	}
	return hop
}

// parseHop parses one address: a bare IP, IP:port, [IPv6] or [IPv6]:port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
				if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
					return netip.Addr{}, false
				}
			} else {
				return netip.Addr{}, false
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone(""), true
}

func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes and plain IP
// addresses (a /32 or /128), as MANA_AUTH_TRUSTED_PROXIES holds. Spaces
// around entries and empty entries are ignored, so "" is no proxies. Host
// bits are masked ("10.1.2.3/8" is 10.0.0.0/8); IPv4-mapped addresses are
// unmapped. A bad entry is an error that names it.
func ParsePrefixes(csv string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range strings.Split(csv, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("web: trusted proxy %q: %w", entry, err)
			}
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("web: trusted proxy %q: %w", entry, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("web: trusted proxy %q: zones are not supported", entry)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// MaxUserAgent is the most of a User-Agent header that is stored.
const MaxUserAgent = 512

// UserAgent returns r's User-Agent cut to MaxUserAgent bytes (on a UTF-8
// boundary), the form every audit row and security event stores.
func UserAgent(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > MaxUserAgent {
		ua = strings.ToValidUTF8(ua[:MaxUserAgent], "")
	}
	return ua
}
