// Package requestid gives every HTTP request an identifier that follows it
// through logs, audit records and the calls it makes to other services, so an
// operator can follow one request across the authorization server and the MCP
// server.
//
// The identifier travels in the X-Request-Id header. An incoming value is
// kept only when it is a sane token (at most MaxLength characters from a
// small safe alphabet), because it ends up in log lines and audit records
// that outside input must not be able to forge or flood; anything else is
// replaced by a fresh random identifier.
package requestid

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
)

// Header is the HTTP header that carries the request id, on requests and on
// responses.
const Header = "X-Request-Id"

// MaxLength bounds an accepted incoming id. A UUID is 36 characters and a W3C
// traceparent 55; anything much longer is more likely an attack on the logs
// than a correlation id.
const MaxLength = 128

// LogKey is the attribute key under which the id appears in log records.
const LogKey = "request_id"

// contextKey is unexported so no other package can overwrite the id.
type contextKey struct{}

// Middleware takes the request id from the X-Request-Id header when it is
// valid (see Valid) or makes a new one, sets it on the response header before
// the handler runs, and stores it in the request's context for FromContext.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !Valid(id) {
			id = New()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// New returns a fresh random request id: 26 base32 characters carrying 128
// bits from crypto/rand, so ids from different servers never collide.
func New() string {
	return rand.Text()
}

// Valid reports whether id is acceptable as a request id taken from outside:
// 1 to MaxLength characters, each an ASCII letter, digit, '-', '_', '.' or
// ':'. The alphabet keeps ids from breaking log formats (no spaces, quotes,
// newlines or control characters) while admitting UUIDs, ULIDs and most
// tracing ids.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !safeByte(id[i]) {
			return false
		}
	}
	return true
}

func safeByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '-', c == '_', c == '.', c == ':':
		return true
	}
	return false
}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the request id stored in ctx, or "" when there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(contextKey{}).(string)
	return id
}

// Attr returns the slog attribute for the request id in ctx
// (request_id=<id>), for explicit use in a log call:
// logger.Info("token issued", requestid.Attr(ctx), ...). With no id in ctx
// the attribute is empty and slog drops it.
func Attr(ctx context.Context) slog.Attr {
	id := FromContext(ctx)
	if id == "" {
		return slog.Attr{}
	}
	return slog.String(LogKey, id)
}
