package password

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Params
	}{
		{"m=19456,t=2,p=1", Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{"t=1, m=47104", Params{Memory: 47104, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{"m=8192", Params{Memory: 8192, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{"p=2,m=65536,t=3", Params{Memory: 65536, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}},
	} {
		got, err := ParseParams(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		again, err := ParseParams(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, again, "String reads back: %s", got)
	}
	for _, in := range []string{"", "m", "m=", "m=0,t=2", "m=19456,m=1", "x=1", "m=-1", "m=abc", "p=256", "m=8,p=2", "t=65", "m=2000000"} {
		_, err := ParseParams(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestMeetsOWASP(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		want bool
	}{
		{Params{}, true}, // the defaults
		{Params{Memory: 46 * 1024, Time: 1}, true},
		{Params{Memory: 12 * 1024, Time: 3}, true},
		{Params{Memory: 7 * 1024, Time: 5}, true},
		{Params{Memory: 19*1024 - 1, Time: 2}, false},
		{Params{Memory: 8192, Time: 1}, false},
		{Params{Memory: 19 * 1024}, true},  // Time 0 is the default, 2
		{Params{Memory: 12 * 1024}, false}, // 12 MiB needs 3 passes
		{Params{Time: 1}, false},           // Memory 0 is the default, 19 MiB: too little for one pass
	} {
		assert.Equal(t, tc.want, tc.p.MeetsOWASP(), "%+v", tc.p)
	}
}
