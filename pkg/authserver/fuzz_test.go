package authserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
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

// FuzzRegisterMetadata feeds arbitrary bytes to the metadata decoding and
// validation of POST /register (clientFromMetadata, what the handler runs
// before storing). It must never panic; a refusal is an RFC 7591 §3.2.2
// error; accepted metadata has only https or loopback-http redirect URIs,
// consistent grants and response types, and only scopes the server offers.
func FuzzRegisterMetadata(f *testing.F) {
	srv := fuzzServer(f)
	for _, seed := range []string{
		`{"redirect_uris":["http://127.0.0.1:3001/callback"],"token_endpoint_auth_method":"none"}`,
		`{"redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"client_secret_basic","scope":"mcp:read nope"}`,
		`{"grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_post"}`,
		`{"redirect_uris":["http://evil.example/cb","javascript:alert(1)","https://a.example/cb#f"]}`,
		`{"redirect_uris":["http://[::1]:8080/cb","http://localhost/cb","https://u:p@a.example/cb"]}`,
		`{"redirect_uris":null,"grant_types":"x","scope":7}`,
		`{} {}`,
		`null`,
		`{"REDIRECT_URIS":["http://127.0.0.1:3001/callback"],"Token_Endpoint_Auth_Method":"none"}`,
		"{\"redirect_uris\":[\"http://127.0.0.1:3001/callback\"],\"\u017fcope\":\"mcp:read\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := srv.clientFromMetadata(body)
		if err != nil {
			oe := asOAuthError(err)
			if oe.Code != ErrInvalidClientMetadata && oe.Code != ErrInvalidRedirectURI {
				t.Fatalf("refusal %q (%v) is not an RFC 7591 error", oe.Code, err)
			}
			return
		}
		for _, raw := range c.RedirectURIs {
			if !registrableRedirect(raw) {
				t.Fatalf("accepted redirect URI %q", raw)
			}
		}
		if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
			t.Fatalf("authorization_code client without redirect URIs")
		}
		if slices.Contains(c.GrantTypes, GrantAuthorizationCode) != slices.Contains(c.ResponseTypes, "code") {
			t.Fatalf("grants %v inconsistent with response types %v", c.GrantTypes, c.ResponseTypes)
		}
		for _, g := range c.GrantTypes {
			if !slices.Contains(supportedGrants, g) {
				t.Fatalf("accepted grant %q", g)
			}
		}
		if !slices.Contains(supportedAuthMethods, c.AuthMethod) {
			t.Fatalf("accepted auth method %q", c.AuthMethod)
		}
		for _, sc := range c.Scopes {
			if !slices.Contains(srv.cfg.Scopes, sc) {
				t.Fatalf("granted scope %q the server does not offer", sc)
			}
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(body, &members); err != nil {
			t.Fatalf("accepted metadata that is not a JSON object: %v", err)
		}
		for name := range members {
			for _, known := range registrationMembers {
				if name != known && strings.EqualFold(name, known) {
					t.Fatalf("accepted member %q, a case variant of %q", name, known)
				}
			}
		}
		if !c.Dynamic || c.ID == "" {
			t.Fatalf("client not marked dynamic or without id: %+v", c)
		}
	})
}

// registrableRedirect is the fuzz oracle for RFC 8252 §7.3 / RFC 6749
// §3.1.2, written apart from validateRedirectURI: https with a host, or
// http whose host is literally localhost or a loopback IP; no fragment,
// no user info.
func registrableRedirect(raw string) bool {
	if strings.Contains(raw, "#") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	switch u.Scheme { // url.Parse lowercases it
	case "https":
		return true
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return true
		}
		ip, err := netip.ParseAddr(host)
		return err == nil && ip.Unmap().IsLoopback()
	default:
		return false
	}
}
