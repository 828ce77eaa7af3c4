package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
)

func TestPprofLoopbackOnly(t *testing.T) {
	r := chi.NewRouter()
	r.Mount(PprofPrefix, Pprof())

	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:40000", http.StatusOK},
		{"127.8.9.10:40000", http.StatusOK},
		{"[::1]:40000", http.StatusOK},
		{"[::ffff:127.0.0.1]:40000", http.StatusOK},
		{"192.0.2.10:40000", http.StatusForbidden},
		{"[2001:db8::1]:40000", http.StatusForbidden},
		{"10.0.0.1:40000", http.StatusForbidden},
		{"localhost:40000", http.StatusForbidden}, // a name is not an address
		{"127.0.0.1", http.StatusForbidden},       // no port: not a real RemoteAddr
		{"", http.StatusForbidden},
	} {
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = tc.remote
			req.Host = "127.0.0.1:3003"
			req.Header.Set("X-Forwarded-For", "127.0.0.1") // must not matter
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			assert.Equal(t, tc.want, rec.Code, "%s from %q", path, tc.remote)
		}
	}
}

// TestLoopbackOnlyRefusesRebinding: a page on a name an attacker rebinds to
// 127.0.0.1 makes the browser connect from loopback, but its Host (and its
// Origin, on a fetch) name the attacker's site; only loopback names pass.
func TestLoopbackOnlyRefusesRebinding(t *testing.T) {
	h := LoopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, tc := range []struct {
		host    string
		origins []string
		want    int
	}{
		{"localhost", nil, http.StatusOK},
		{"LocalHost:3003", nil, http.StatusOK},
		{"127.0.0.1", nil, http.StatusOK},
		{"127.0.0.1:3003", nil, http.StatusOK},
		{"127.9.9.9:1", nil, http.StatusOK},
		{"[::1]", nil, http.StatusOK},
		{"[::1]:3003", nil, http.StatusOK},
		{"localhost:3003", []string{"http://localhost:6274"}, http.StatusOK},
		{"127.0.0.1:3003", []string{"https://127.0.0.1"}, http.StatusOK},
		{"127.0.0.1:3003", []string{"http://[::1]:8080"}, http.StatusOK},
		{"evil.example", nil, http.StatusForbidden},
		{"evil.example:3003", nil, http.StatusForbidden},
		{"localhost.evil.example:3003", nil, http.StatusForbidden},
		{"127.0.0.1.nip.io:3003", nil, http.StatusForbidden},
		{"192.0.2.1:3003", nil, http.StatusForbidden},
		{"", nil, http.StatusForbidden},
		{"localhost:3003", []string{"http://evil.example"}, http.StatusForbidden},
		{"localhost:3003", []string{"http://evil.example:3003"}, http.StatusForbidden},
		{"localhost:3003", []string{"null"}, http.StatusForbidden},
		{"localhost:3003", []string{""}, http.StatusForbidden},
		{"localhost:3003", []string{"file://localhost"}, http.StatusForbidden},
		{"localhost:3003", []string{"http://localhost", "http://evil.example"}, http.StatusForbidden},
	} {
		for _, path := range []string{"/debug/pprof/cmdline", "/metrics"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Host = tc.host
			for _, o := range tc.origins {
				req.Header.Add("Origin", o)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.want, rec.Code, "%s Host %q Origin %q", path, tc.host, tc.origins)
		}
	}
}

func TestPprofServesProfiles(t *testing.T) {
	srv := httptest.NewServer(Pprof())
	defer srv.Close()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap?debug=1"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if assert.NoError(t, err, path) {
			assert.Equal(t, http.StatusOK, resp.StatusCode, path)
			assert.NoError(t, resp.Body.Close())
		}
	}
}
