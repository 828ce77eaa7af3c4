package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// unmatchedRoute labels requests no route matched (404s of scanners, typos),
// so random paths all land in one series.
const unmatchedRoute = "unmatched"

// Middleware records every request in HTTPRequests and HTTPDuration.
//
// It must be installed with Use on the chi router (or inside it), because the
// route label is chi's route pattern ("/control/clients/{client_id}"), read
// after the router has matched; the raw path would give one series per
// client id or scanned URL. The wrapped ResponseWriter keeps Flush and
// Hijack working, which the MCP server's SSE streams need.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			// Recorded in a defer so a request whose handler panics (and
			// is turned into a 500 by a recoverer further out) still counts.
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK // nothing written: net/http sends 200
			}
			route := routePattern(r)
			method := methodLabel(r.Method)
			m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.HTTPDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}

// routePattern returns the chi pattern the request matched, or
// unmatchedRoute.
func routePattern(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return unmatchedRoute
	}
	pattern := rctx.RoutePattern()
	if pattern == "" || pattern == "/*" {
		return unmatchedRoute
	}
	return pattern
}

// methodLabel bounds the method label to the standard methods, since a client
// may send any token as a method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}
