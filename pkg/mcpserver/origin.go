package mcpserver

// This file implements the Origin check the MCP Streamable HTTP transport
// requires ("Servers MUST validate the Origin header on all incoming
// connections to prevent DNS rebinding attacks", transports §Security
// Warning), and CORS (Fetch standard) for configured browser origins.
//
// The SDK's StreamableHTTPHandler already refuses a non-loopback Host header
// on a loopback connection (its DNS-rebinding protection, left enabled); it
// does not look at Origin, so this file does.

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// originPolicy decides which Origins may call the server and which get CORS
// headers.
type originPolicy struct {
	allowed []string // normalized scheme://host[:port]
	cors    []string
}

func newOriginPolicy(allowed, cors []string) (*originPolicy, error) {
	p := &originPolicy{}
	for _, o := range allowed {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		p.allowed = append(p.allowed, n)
	}
	for _, o := range cors {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		p.cors = append(p.cors, n)
	}
	return p, nil
}

// normalizeOrigin lower-cases an http(s) origin and checks it has no path.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin like https://host[:port]", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// allows reports whether a request's Origin header is acceptable: absent
// (non-browser clients send none), a loopback origin, or a configured one.
func (p *originPolicy) allows(origin string) bool {
	if origin == "" {
		return true
	}
	n, err := normalizeOrigin(origin)
	if err != nil {
		return false // includes the opaque "null" origin
	}
	if isLoopbackOrigin(n) {
		return true
	}
	return slices.Contains(p.allowed, n) || slices.Contains(p.cors, n)
}

func isLoopbackOrigin(normalized string) bool {
	u, err := url.Parse(normalized)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// corsAllowed reports whether origin gets CORS response headers.
func (p *originPolicy) corsAllowed(origin string) bool {
	n, err := normalizeOrigin(origin)
	return err == nil && slices.Contains(p.cors, n)
}

// middleware refuses disallowed Origins with 403 and adds CORS headers for
// the configured ones. Preflight requests end here with 204, before any
// authentication (browsers send them without credentials).
func (p *originPolicy) middleware(refuse func(w http.ResponseWriter, r *http.Request, status int, reason string)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if !p.allows(origin) {
				refuse(w, r, http.StatusForbidden, "origin not allowed")
				return
			}
			if origin != "" && p.corsAllowed(origin) {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
				h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate")
				if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
					h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, X-Session-Token")
					h.Set("Access-Control-Max-Age", "600")
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
