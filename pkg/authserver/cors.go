package authserver

// This file implements CORS (the Fetch standard's CORS protocol) for the
// endpoints a browser-based MCP client calls itself (MCP Inspector and
// other in-browser clients): /token, /register, /revoke and /userinfo.
// Only the origins in server.cors_origins get Access-Control-Allow-Origin;
// credentials (cookies) are never allowed, since these endpoints
// authenticate with what the request carries. /introspect is
// server-to-server and gets none. Metadata and JWKS are public documents
// and send "*" on their own (metadata.go, jwks.go).

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const (
	corsAllowHeaders = "Authorization, Content-Type, MCP-Protocol-Version"
	// corsMaxAge is how long (seconds) a browser may cache a preflight.
	corsMaxAge = "600"
	// corsAnyOrigin in server.cors_origins allows every origin (development only).
	corsAnyOrigin = "*"
)

// corsPolicy is the parsed server.cors_origins.
type corsPolicy struct {
	anyOrigin bool
	origins   []string // normalized scheme://host[:port]
}

func newCORSPolicy(origins []string) corsPolicy {
	var p corsPolicy
	for _, o := range origins {
		if o == corsAnyOrigin {
			p.anyOrigin = true
			continue
		}
		if n, err := normalizeOrigin(o); err == nil {
			p.origins = append(p.origins, n)
		}
	}
	return p
}

// normalizeOrigin lower-cases an http(s) origin and checks it has no path,
// query, fragment or user info.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin like https://host[:port] (or %q)", o, corsAnyOrigin)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// allowOrigin returns the Access-Control-Allow-Origin value for a request's
// Origin, and false when that origin gets no CORS headers.
func (p corsPolicy) allowOrigin(origin string) (string, bool) {
	if origin == "" {
		return "", false
	}
	if p.anyOrigin {
		return corsAnyOrigin, true
	}
	n, err := normalizeOrigin(origin)
	if err != nil || !slices.Contains(p.origins, n) {
		return "", false
	}
	return origin, true
}

// corsHeaders adds the CORS response headers for an allowed Origin, on
// every response of the endpoint (errors and injected faults included, so
// a browser client can read why it failed).
func (s *Server) corsHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.setCORS(w.Header(), r)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) setCORS(h http.Header, r *http.Request) bool {
	if len(s.cors.origins) > 0 {
		h.Add("Vary", "Origin") // the answer depends on it
	}
	allow, ok := s.cors.allowOrigin(r.Header.Get("Origin"))
	if !ok {
		return false
	}
	h.Set("Access-Control-Allow-Origin", allow)
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
	return true
}

// preflight answers OPTIONS for an endpoint that accepts methods: 204 with
// the CORS preflight headers for an allowed Origin, a bare 204 with Allow
// otherwise (which the browser treats as a refusal).
func (s *Server) preflight(methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", methods+", OPTIONS")
		if s.setCORS(h, r) && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
