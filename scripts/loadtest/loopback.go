package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// checkLoopbackURL refuses any target that is not plain HTTP(S) to a loopback
// host: the tool generates tens of thousands of requests a second and must
// never be pointed at someone else's server. Host names are resolved and
// every address must be loopback; the dialer checks again at connect time
// (see newHTTPClient), so a name that resolves differently later still cannot
// escape.
func checkLoopbackURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse target %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("target %q: no host", raw)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if !addr.Unmap().IsLoopback() {
			return nil, fmt.Errorf("target %q: %s is not a loopback address; this tool only loads local servers", raw, host)
		}
		return u, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("target %q: resolve %s: %w", raw, host, err)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return nil, fmt.Errorf("target %q: %s resolves to %s, not loopback; this tool only loads local servers", raw, host, a)
		}
	}
	return u, nil
}

// refuseNonLoopback is a net.Dialer Control hook: it runs with the address
// actually being connected to, after name resolution, and refuses anything
// but loopback. It also covers redirects and URLs read from server metadata.
func refuseNonLoopback(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: unparsable address: %w", address, err)
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("dial %s: not a loopback address, refused", address)
	}
	return nil
}

// newHTTPClient returns the client every worker shares: keep-alive
// connections pooled up to the concurrency (so each worker reuses its
// connection instead of paying a handshake per request), a per-request
// timeout, loopback-only dialing, and no automatic redirects (the
// authorization redirect is read, not followed).
func newHTTPClient(concurrency int, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: refuseNonLoopback}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        2*concurrency + 16,
		MaxIdleConnsPerHost: concurrency + 8,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		TLSHandshakeTimeout: timeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
