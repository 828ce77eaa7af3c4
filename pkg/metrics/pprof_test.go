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
			req.Header.Set("X-Forwarded-For", "127.0.0.1") // must not matter
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			assert.Equal(t, tc.want, rec.Code, "%s from %q", path, tc.remote)
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
