package authserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFormParsedOnceMatchesDirectParse: readForm gives the same answer
// whether the instrumenting middleware parsed the body first (the router's
// path) or the handler reads it itself (a handler used without it).
func TestFormParsedOnceMatchesDirectParse(t *testing.T) {
	srv := &Server{stats: newStatsRecorder(true), faults: newFaultQueue(), now: newFakeClock().Now, log: discard}
	cases := map[string]struct{ body, ct string }{
		"form":       {"grant_type=client_credentials&scope=a+b&empty=", "application/x-www-form-urlencoded"},
		"charset":    {"a=1", "application/x-www-form-urlencoded; charset=utf-8"},
		"duplicate":  {"a=1&a=2", "application/x-www-form-urlencoded"},
		"resources":  {"resource=https://a&resource=https://b", "application/x-www-form-urlencoded"},
		"malformed":  {"a=%zz", "application/x-www-form-urlencoded"},
		"json":       {`{"a":1}`, "application/json"},
		"no type":    {"a=1", ""},
		"multipart":  {"a=1", "multipart/form-data; boundary=x"},
		"empty body": {"", "application/x-www-form-urlencoded"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			newReq := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/token?q=1", strings.NewReader(tc.body))
				if tc.ct != "" {
					r.Header.Set("Content-Type", tc.ct)
				}
				return r
			}
			wantForm, wantErr := readForm(newReq())
			var gotForm params
			var gotErr error
			var sawParsed bool
			h := srv.instrument("token")(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				_, sawParsed = parsedRequestOf(r)
				gotForm, gotErr = readForm(r)
			}))
			h.ServeHTTP(httptest.NewRecorder(), newReq())
			require.True(t, sawParsed, "the middleware hands its parse to the handler")
			assert.Equal(t, wantForm, gotForm)
			assert.Equal(t, wantErr, gotErr)
		})
	}
}
