package authserver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCheckFetchAddress runs addresses through the SSRF filter with
// cimd.allow_loopback off and on: turning it on lets loopback through and
// nothing else.
func TestCheckFetchAddress(t *testing.T) {
	for _, tc := range []struct {
		addr           string
		strict, loopOK bool // allowed with allow_loopback false, true
	}{
		// public
		{"93.184.216.34:443", true, true},
		{"8.8.8.8:443", true, true},
		{"[2606:4700::1111]:443", true, true},
		{"[::ffff:93.184.216.34]:443", true, true},
		{"[64:ff9b::5db8:d822]:443", true, true}, // NAT64 of 93.184.216.34
		{"[2002:5db8:d822::1]:443", true, true},  // 6to4 of 93.184.216.34
		// loopback: only with allow_loopback
		{"127.0.0.1:443", false, true},
		{"127.9.8.7:443", false, true},
		{"[::1]:443", false, true},
		{"[::ffff:127.0.0.1]:443", false, true},
		// never, whatever allow_loopback says
		{"0.0.0.0:443", false, false},
		{"0.1.2.3:443", false, false},
		{"[::]:443", false, false},
		{"10.1.2.3:443", false, false},
		{"100.64.0.1:443", false, false},
		{"100.127.255.254:443", false, false},
		{"169.254.169.254:80", false, false},
		{"172.16.0.1:443", false, false},
		{"172.31.255.255:443", false, false},
		{"192.0.0.8:443", false, false},
		{"192.0.2.1:443", false, false},
		{"192.168.1.1:443", false, false},
		{"198.18.0.1:443", false, false},
		{"198.19.255.1:443", false, false},
		{"198.51.100.7:443", false, false},
		{"203.0.113.9:443", false, false},
		{"224.0.0.1:443", false, false},
		{"239.255.255.250:443", false, false},
		{"240.0.0.1:443", false, false},
		{"255.255.255.255:443", false, false},
		{"[::ffff:10.0.0.1]:443", false, false},
		{"[::ffff:169.254.169.254]:443", false, false},
		{"[::127.0.0.1]:443", false, false},                          // IPv4-compatible
		{"[64:ff9b::7f00:1]:443", false, false},                      // NAT64 of 127.0.0.1
		{"[64:ff9b::a9fe:a9fe]:443", false, false},                   // NAT64 of 169.254.169.254
		{"[64:ff9b:1::5db8:d822]:443", false, false},                 // local-use NAT64
		{"[2002:7f00:1::1]:443", false, false},                       // 6to4 of 127.0.0.1
		{"[2002:c0a8:101::1]:443", false, false},                     // 6to4 of 192.168.1.1
		{"[2001:0:4136:e378:8000:63bf:3fff:fdd2]:443", false, false}, // Teredo
		{"[2001:db8::1]:443", false, false},
		{"[fc00::1]:443", false, false},
		{"[fd12:3456::1]:443", false, false},
		{"[fe80::1]:443", false, false},
		{"[fe80::1%eth0]:443", false, false},
		{"[fec0::1]:443", false, false},
		{"[ff02::1]:443", false, false},
		{"[ff0e::1]:443", false, false},
		// not an address
		{"localhost:443", false, false},
		{"93.184.216.34", false, false},
	} {
		assert.Equal(t, tc.strict, checkFetchAddress(tc.addr, false) == nil, "allow_loopback=false %s", tc.addr)
		assert.Equal(t, tc.loopOK, checkFetchAddress(tc.addr, true) == nil, "allow_loopback=true %s", tc.addr)
	}
}
