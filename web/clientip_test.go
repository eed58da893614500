package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/mana-how/mana-auth/web"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustPrefixes(t testing.TB, csv string) []netip.Prefix {
	t.Helper()
	p, err := web.ParsePrefixes(csv)
	require.NoError(t, err)
	return p
}

// TestClientIP: without trusted proxies X-Forwarded-For is ignored (the
// spoof rows fail if it were believed); with them, the walk goes from the
// right and stops at the first untrusted or malformed entry (the walk rows
// fail if it took the leftmost entry, which any client can forge).
func TestClientIP(t *testing.T) {
	proxies := "10.0.0.0/8, 2001:db8:ffff::/48"
	cases := []struct {
		name    string
		trusted string
		remote  string
		xff     []string
		want    string // "" = the zero Addr
	}{
		{name: "no_header", remote: "203.0.113.7:51234", want: "203.0.113.7"},
		{name: "spoof_ignored_without_trusted_proxies", remote: "203.0.113.7:51234", xff: []string{"1.2.3.4"}, want: "203.0.113.7"},
		{name: "spoof_ignored_from_private_remote_without_trust", remote: "10.0.0.5:443", xff: []string{"1.2.3.4"}, want: "10.0.0.5"},
		{name: "spoof_ignored_from_untrusted_remote", trusted: proxies, remote: "198.51.100.9:1", xff: []string{"1.2.3.4"}, want: "198.51.100.9"},
		{name: "ipv6_remote", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "ipv4_mapped_remote_unmapped", remote: "[::ffff:192.0.2.1]:80", want: "192.0.2.1"},
		{name: "zoned_remote_zone_dropped", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "remote_without_port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "unix_socket_remote", remote: "@", want: ""},
		{name: "empty_remote", remote: "", want: ""},

		{name: "trusted_one_hop", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "trusted_rightmost_untrusted_wins", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "trusted_forged_left_entries_ignored", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"1.1.1.1, 8.8.8.8, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "trusted_all_hops_trusted", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "trusted_no_header", trusted: proxies, remote: "10.0.0.5:443", want: "10.0.0.5"},
		{name: "trusted_malformed_rightmost", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"203.0.113.9, garbage"}, want: "10.0.0.5"},
		{name: "trusted_malformed_middle", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"203.0.113.9, unknown, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "trusted_empty_entry_stops", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"203.0.113.9,,10.0.0.2"}, want: "10.0.0.2"},
		{name: "trusted_empty_header", trusted: proxies, remote: "10.0.0.5:443", xff: []string{""}, want: "10.0.0.5"},
		{name: "trusted_several_header_lines", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"198.51.100.1, 203.0.113.9", "10.0.0.2"}, want: "203.0.113.9"},
		{name: "trusted_entry_with_port", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"203.0.113.7:5555"}, want: "203.0.113.7"},
		{name: "trusted_bracketed_ipv6", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"[2001:db8::7]"}, want: "2001:db8::7"},
		{name: "trusted_bracketed_ipv6_port", trusted: proxies, remote: "10.0.0.5:443", xff: []string{"[2001:db8::7]:8080"}, want: "2001:db8::7"},
		{name: "trusted_ipv6_proxy", trusted: proxies, remote: "[2001:db8:ffff::1]:443", xff: []string{"2001:db8::7, 2001:db8:ffff::2"}, want: "2001:db8::7"},
		{name: "trusted_mapped_hop_matches_v4_prefix", trusted: proxies, remote: "[::ffff:10.0.0.5]:443", xff: []string{"::ffff:10.0.0.9, 203.0.113.1"}, want: "203.0.113.1"},
		{name: "trusted_spaces_and_tabs", trusted: proxies, remote: "10.0.0.5:443", xff: []string{" 203.0.113.7 ,\t10.0.0.2 "}, want: "203.0.113.7"},
		{name: "trusted_single_ip_proxy", trusted: "192.0.2.10", remote: "192.0.2.10:443", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "trusted_single_ip_neighbor_not_trusted", trusted: "192.0.2.10", remote: "192.0.2.11:443", xff: []string{"203.0.113.7"}, want: "192.0.2.11"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			got := web.ClientIP(req, mustPrefixes(t, tc.trusted))
			if tc.want == "" {
				assert.Falsef(t, got.IsValid(), "ClientIP(%q, %q) = %v, want the zero Addr", tc.remote, tc.xff, got)
				return
			}
			assert.Equalf(t, netip.MustParseAddr(tc.want), got, "ClientIP(%q, %q)", tc.remote, tc.xff)
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	good := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}},
		{"10.0.0.0/8, 192.168.1.1 ,::1,2001:db8::/32", []string{"10.0.0.0/8", "192.168.1.1/32", "::1/128", "2001:db8::/32"}},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}},
		{"::ffff:10.0.0.1", []string{"10.0.0.1/32"}},
		{"::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}},
		{"0.0.0.0/0", []string{"0.0.0.0/0"}},
	}
	for _, tc := range good {
		got, err := web.ParsePrefixes(tc.in)
		require.NoErrorf(t, err, "ParsePrefixes(%q)", tc.in)
		var gotS []string
		for _, p := range got {
			gotS = append(gotS, p.String())
		}
		assert.Equalf(t, tc.want, gotS, "ParsePrefixes(%q)", tc.in)
	}
	for _, bad := range []string{"nope", "10.0.0.0/33", "1.2.3.4/", "fe80::1%eth0", "10.0.0.1, 300.1.1.1", "10.0.0.0/8;192.168.0.0/16", "localhost"} {
		_, err := web.ParsePrefixes(bad)
		require.Errorf(t, err, "ParsePrefixes(%q) accepted", bad)
		// The error names the bad entry, not the whole list.
		entry := bad
		if bad == "10.0.0.1, 300.1.1.1" {
			entry = "300.1.1.1"
		}
		assert.Containsf(t, err.Error(), `"`+entry+`"`, "ParsePrefixes(%q) error %q does not name the entry", bad, err)
	}
}
