package authserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func fuzzServer(f *testing.F) *Server {
	cfg := testConfig(newFakeClock())
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.CIMD.Enabled = false // no network fetches for fuzzed client ids
	srv, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	return srv
}

// FuzzTokenRequest feeds arbitrary bodies to POST /token: the answer is
// always a JSON OAuth error or a token, never a 5xx or a panic.
func FuzzTokenRequest(f *testing.F) {
	srv := fuzzServer(f)
	f.Add("grant_type=authorization_code&code=abc&code_verifier=x&client_id=http-oauth2-client", "application/x-www-form-urlencoded")
	f.Add("grant_type=client_credentials&client_id=mcp-service&client_secret=mcp-service-dev-secret", "application/x-www-form-urlencoded")
	f.Add("grant_type=refresh_token&refresh_token=r&client_id=http-oauth2-client&scope=mcp%3Aread", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("grant_type=a&grant_type=b", "application/x-www-form-urlencoded")
	f.Add("x=%zz;y", "application/x-www-form-urlencoded")
	f.Add(`{"grant_type":"client_credentials"}`, "application/json")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("not JSON: %q", rec.Body.String())
		}
		if rec.Code != http.StatusOK && out["error"] == nil {
			t.Fatalf("error response without error: %q", rec.Body.String())
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("token response cacheable")
		}
	})
}

// FuzzAuthorizeQuery feeds arbitrary queries to GET /authorize: the answer
// is an error page, a consent page or a redirect to a registered URI, never
// a 5xx, a panic or a redirect anywhere else.
func FuzzAuthorizeQuery(f *testing.F) {
	srv := fuzzServer(f)
	f.Add("response_type=code&client_id=http-oauth2-client&redirect_uri=http%3A%2F%2F127.0.0.1%3A3001%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s")
	f.Add("client_id=http-oauth2-client&client_id=x")
	f.Add("client_id=http-oauth2-client&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&resource=%23&scope=%20%20")
	f.Add("client_id=%zz")
	f.Add("client_id=https%3A%2F%2F127.0.0.1%2Fc.json")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		req.URL.RawQuery = query // any bytes, as a raw request line could carry
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusFound:
			loc := rec.Header().Get("Location")
			if !strings.HasPrefix(loc, "http://127.0.0.1:") && !strings.HasPrefix(loc, "https://app.example.test/cb") {
				t.Fatalf("redirect to unregistered %q", loc)
			}
		case http.StatusBadRequest, http.StatusOK:
		default:
			t.Fatalf("status %d for %q", rec.Code, query)
		}
	})
}
