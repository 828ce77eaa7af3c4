package requestid

import (
	"context"
	"log/slog"
	"net/http"
)

// Transport is an http.RoundTripper that sends the request id found in each
// outgoing request's context as the X-Request-Id header, so a call one
// service makes while serving a request (a token introspection, a JWKS fetch,
// the client's call to the MCP server) can be matched with it in the other
// service's logs. A header already set by the caller is left alone.
type Transport struct {
	// Base performs the request; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	id := FromContext(r.Context())
	if id == "" || r.Header.Get(Header) != "" {
		return base.RoundTrip(r)
	}
	// A RoundTripper must not modify the caller's request.
	r = r.Clone(r.Context())
	r.Header.Set(Header, id)
	return base.RoundTrip(r)
}

// LogHandler wraps an slog.Handler so that every record logged with a
// context (logger.InfoContext(ctx, ...)) carries the request id found in that
// context, without each call site adding it.
func LogHandler(h slog.Handler) slog.Handler {
	return logHandler{next: h}
}

type logHandler struct {
	next slog.Handler
}

// Enabled implements slog.Handler.
func (h logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h logHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := FromContext(ctx); id != "" {
		rec = rec.Clone()
		rec.AddAttrs(slog.String(LogKey, id))
	}
	return h.next.Handle(ctx, rec)
}

// WithAttrs implements slog.Handler.
func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{next: h.next.WithGroup(name)}
}
