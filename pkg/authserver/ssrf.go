package authserver

// This file is the SSRF address filter of the client ID metadata document
// fetch (cimd.go): the address a client_id URL resolves to must be public.
// The special-purpose ranges come from the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890) and are checked on the
// dialled address, so DNS answers (rebinding included) cannot slip past.
// IPv6 forms that carry an IPv4 address (mapped, NAT64 RFC 6052, 6to4
// RFC 3056) are judged by the IPv4 address they reach.

import (
	"fmt"
	"net"
	"net/netip"
)

// deniedPrefixes are the ranges a fetch must never reach.
var deniedPrefixes = mustPrefixes(
	// IPv4
	"0.0.0.0/8",          // "this network"
	"10.0.0.0/8",         // private
	"100.64.0.0/10",      // shared address space (CGNAT)
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link-local (cloud metadata services)
	"172.16.0.0/12",      // private
	"192.0.0.0/24",       // IETF protocol assignments
	"192.0.2.0/24",       // documentation
	"192.88.99.0/24",     // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",     // private
	"198.18.0.0/15",      // benchmarking
	"198.51.100.0/24",    // documentation
	"203.0.113.0/24",     // documentation
	"224.0.0.0/4",        // multicast
	"240.0.0.0/4",        // reserved
	"255.255.255.255/32", // limited broadcast (inside 240/4; named for the reader)
	// IPv6
	"::/128",          // unspecified
	"::1/128",         // loopback
	"::/96",           // IPv4-compatible (deprecated)
	"::ffff:0:0/96",   // IPv4-mapped: Unmap turns these into IPv4 first
	"::ffff:0:0:0/96", // IPv4-translated (RFC 2765)
	"64:ff9b:1::/48",  // local-use NAT64 (RFC 8215): not globally reachable
	"100::/64",        // discard-only
	"2001::/32",       // Teredo: the IPv4 it reaches is obfuscated
	"2001:2::/48",     // benchmarking
	"2001:db8::/32",   // documentation
	"3fff::/20",       // documentation (RFC 9637)
	"fc00::/7",        // unique local
	"fe80::/10",       // link-local
	"fec0::/10",       // site-local (deprecated)
	"ff00::/8",        // multicast
)

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: IPv4 in the last 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056: IPv4 in bits 16-47
)

func mustPrefixes(cidrs ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(cidrs))
	for i, c := range cidrs {
		out[i] = netip.MustParsePrefix(c)
	}
	return out
}

// checkFetchAddress refuses a dialled address ("host:port") that an outside
// party must not make this server reach. allowLoopback (cimd.allow_loopback,
// for tests that serve documents on 127.0.0.1) lets loopback addresses
// through and nothing else: private, link-local and the rest stay refused.
func checkFetchAddress(address string, allowLoopback bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("bad address %q", address)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("bad address %q", address)
	}
	a = a.Unmap()
	if allowLoopback && a.IsLoopback() {
		return nil
	}
	if !publicAddr(a) {
		return fmt.Errorf("address %s is not public", a)
	}
	return nil
}

// publicAddr reports whether a is outside every denied range, judging an
// IPv6 address that embeds an IPv4 one by that IPv4 address.
func publicAddr(a netip.Addr) bool {
	if a.Zone() != "" {
		return false // a scoped address is link-local by construction
	}
	for _, p := range deniedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}
