package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthorizeAutoApproveRedirectsWithCodeStateIss(t *testing.T) {
	e := newEnv(t, nil)
	a := e.authorize(authzParams{scope: "mcp:read", resource: testResource})
	assert.Len(t, a.code, 43)
	// The code is stored only as a hash.
	_, err := e.srv.store.GetRefresh(t.Context(), a.code)
	assert.Error(t, err)
}

func TestAuthorizeErrorPagesNeverRedirect(t *testing.T) {
	e := newEnv(t, nil)
	_, challenge := pkcePair()
	cases := map[string]url.Values{
		"unknown client":         authorizeQuery(authzParams{clientID: "nope"}, challenge, "s"),
		"other path":             authorizeQuery(authzParams{redirect: "http://127.0.0.1:3001/other"}, challenge, "s"),
		"other host":             authorizeQuery(authzParams{redirect: "https://evil.example/callback"}, challenge, "s"),
		"extra query":            authorizeQuery(authzParams{redirect: testRedirect + "?x=1"}, challenge, "s"),
		"https instead of http":  authorizeQuery(authzParams{redirect: "https://127.0.0.1:3001/callback"}, challenge, "s"),
		"other loopback literal": authorizeQuery(authzParams{redirect: "http://localhost:3001/callback"}, challenge, "s"),
	}
	dupClient := authorizeQuery(authzParams{}, challenge, "s")
	dupClient.Add("client_id", testPublicClient)
	cases["duplicate client_id"] = dupClient
	noClient := authorizeQuery(authzParams{}, challenge, "s")
	noClient.Del("client_id")
	cases["missing client_id"] = noClient
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			resp := e.get("/authorize?"+q.Encode(), nil)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Location"))
			assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"))
		})
	}
	t.Run("malformed query", func(t *testing.T) {
		resp := e.get("/authorize?client_id=%zz", nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Location"))
	})
	t.Run("missing redirect_uri with several registered", func(t *testing.T) {
		require.NoError(t, e.srv.AddClient(ClientConfig{
			ClientID: "two-redirects", RedirectURIs: []string{testRedirect, "https://b.example/cb"},
			GrantTypes: []string{GrantAuthorizationCode}, TokenEndpointAuthMethod: AuthNone,
		}))
		q := authorizeQuery(authzParams{clientID: "two-redirects"}, challenge, "s")
		q.Del("redirect_uri")
		resp := e.get("/authorize?"+q.Encode(), nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestAuthorizeRedirectURIOmittedWithOneRegistered(t *testing.T) {
	e := newEnv(t, nil)
	verifier, challenge := pkcePair()
	q := authorizeQuery(authzParams{}, challenge, "s")
	q.Del("redirect_uri")
	params := redirectQuery(t, e.get("/authorize?"+q.Encode(), nil), testRedirect)
	require.NotEmpty(t, params.Get("code"))
	// The token request must then omit it too (RFC 6749 §4.1.3).
	form := url.Values{"grant_type": {"authorization_code"}, "code": {params.Get("code")}, "client_id": {testPublicClient}, "code_verifier": {verifier}}
	assert.Equal(t, http.StatusOK, e.postForm("/token", form, nil).StatusCode)
}

func TestAuthorizeLoopbackPortMayDiffer(t *testing.T) {
	e := newEnv(t, nil)
	for _, redirect := range []string{"http://127.0.0.1:45123/callback", "http://127.0.0.1/callback"} {
		a := e.authorize(authzParams{redirect: redirect, scope: "mcp:read"})
		assert.Equal(t, http.StatusOK, e.exchange(a, nil).StatusCode)
	}
}

func TestAuthorizeErrorsRedirectWithStateAndIss(t *testing.T) {
	e := newEnv(t, nil)
	verifier, challenge := pkcePair()
	cases := []struct {
		name   string
		mutate func(url.Values)
		query  authzParams
		want   string
	}{
		{"missing PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, authzParams{}, ErrInvalidRequest},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge", verifier); q.Set("code_challenge_method", "plain") }, authzParams{}, ErrInvalidRequest},
		{"PKCE method missing", func(q url.Values) { q.Del("code_challenge_method") }, authzParams{}, ErrInvalidRequest},
		{"challenge not base64url", func(q url.Values) { q.Set("code_challenge", strings.Repeat("!", 43)) }, authzParams{}, ErrInvalidRequest},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, authzParams{}, ErrUnsupportedResponseType},
		{"response_type missing", func(q url.Values) { q.Del("response_type") }, authzParams{}, ErrInvalidRequest},
		{"unknown scope", nil, authzParams{scope: "mcp:read admin:all"}, ErrInvalidScope},
		{"scope beyond client", nil, authzParams{clientID: testOtherPublic, scope: "mcp:read mcp:write"}, ErrInvalidScope},
		{"relative resource", nil, authzParams{resource: "/mcp"}, ErrInvalidTarget},
		{"resource with fragment", nil, authzParams{resource: testResource + "#frag"}, ErrInvalidTarget},
		{"garbage resource", nil, authzParams{resource: "not a uri"}, ErrInvalidTarget},
		{"two resources", func(q url.Values) { q.Add("resource", "https://b.example/") }, authzParams{resource: testResource}, ErrInvalidTarget},
		{"duplicate scope", func(q url.Values) { q.Add("scope", "mcp:write") }, authzParams{scope: "mcp:read"}, ErrInvalidRequest},
		{"duplicate state", func(q url.Values) { q.Add("state", "other") }, authzParams{}, ErrInvalidRequest},
		{"unknown login_hint", nil, authzParams{loginHint: "mallory"}, ErrAccessDenied},
		{"fragment response mode", func(q url.Values) { q.Set("response_mode", "fragment") }, authzParams{}, ErrInvalidRequest},
		{"state too long", func(q url.Values) { q.Set("state", strings.Repeat("s", maxStateLen+1)) }, authzParams{}, ErrInvalidRequest},
		{"client without code grant", nil, authzParams{clientID: testServiceClient}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeQuery(tc.query, challenge, "st")
			if tc.mutate != nil {
				tc.mutate(q)
			}
			resp := e.get("/authorize?"+q.Encode(), nil)
			if tc.want == "" { // mcp-service has no redirect URI: error page
				assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
				return
			}
			params := redirectQuery(t, resp, testRedirect)
			assert.Equal(t, tc.want, params.Get("error"), params.Get("error_description"))
			assert.Empty(t, params.Get("code"))
			assert.Equal(t, e.srv.Issuer(), params.Get("iss"))
			if q.Get("state") == "st" {
				assert.Equal(t, "st", params.Get("state"))
			}
		})
	}
}

func TestAuthorizeUnauthorizedClient(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.srv.AddClient(ClientConfig{
		ClientID: "cc-with-redirect", ClientSecret: "s3cret", RedirectURIs: []string{testRedirect},
		GrantTypes: []string{GrantClientCredentials}, TokenEndpointAuthMethod: AuthClientSecretBasic,
	}))
	_, challenge := pkcePair()
	q := authorizeQuery(authzParams{clientID: "cc-with-redirect"}, challenge, "st")
	params := redirectQuery(t, e.get("/authorize?"+q.Encode(), nil), testRedirect)
	assert.Equal(t, ErrUnauthorizedClient, params.Get("error"))
}

func TestAuthorizeResourceAllowlist(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Resources.Allowed = []string{testResource} })
	e.authorize(authzParams{resource: testResource})
	_, challenge := pkcePair()
	q := authorizeQuery(authzParams{resource: "https://other.example/mcp"}, challenge, "st")
	params := redirectQuery(t, e.get("/authorize?"+q.Encode(), nil), testRedirect)
	assert.Equal(t, ErrInvalidTarget, params.Get("error"))
}

func TestAuthorizeDenyNextLogin(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.DenyNextLogin()
	_, challenge := pkcePair()
	q := authorizeQuery(authzParams{}, challenge, "st")
	params := redirectQuery(t, e.get("/authorize?"+q.Encode(), nil), testRedirect)
	assert.Equal(t, ErrAccessDenied, params.Get("error"))
	assert.Equal(t, "st", params.Get("state"))
	e.authorize(authzParams{}) // only the next one
}

func TestAuthorizeLoginHintByEmail(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{scope: "mcp:read", loginHint: "bob@example.com"})
	claims := e.verify(str(tok["access_token"]))
	assert.Equal(t, "bob", claims["sub"])
}

func TestAuthorizeQueryParsing(t *testing.T) {
	req, err := parseAuthorizeQuery("client_id=a&scope=x&scope=y&state=&nonce=n")
	require.NoError(t, err)
	assert.Equal(t, "a", req.ClientID)
	assert.Equal(t, []string{"scope"}, req.Duplicated)
	assert.Empty(t, req.State, "a parameter without a value counts as omitted")
	_, err = parseAuthorizeQuery("a=%zz")
	assert.Error(t, err)
}

func TestRedirectURIMatching(t *testing.T) {
	reg := []string{"http://127.0.0.1:3001/callback", "https://app.example/cb", "http://[::1]:80/cb", "http://localhost:1/cb"}
	for uri, want := range map[string]bool{
		"http://127.0.0.1:3001/callback":   true,
		"http://127.0.0.1:9/callback":      true,
		"http://127.0.0.1/callback":        true,
		"http://[::1]:5555/cb":             true,
		"http://localhost:777/cb":          true,
		"https://app.example/cb":           true,
		"https://app.example:444/cb":       false,
		"http://127.0.0.1:3001/callback/":  false,
		"http://127.0.0.2:3001/callback":   false,
		"http://localhost:3001/callback":   false,
		"http://127.0.0.1:3001/callback?a": false,
		"http://127.0.0.1:3001/callback#f": false,
		"https://app.example/cb?x=1":       false,
	} {
		assert.Equal(t, want, redirectURIMatches(reg, uri), uri)
	}
}

func TestValidateRedirectURI(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://app.example/cb":      true,
		"http://127.0.0.1:3001/cb":    true,
		"http://[::1]/cb":             true,
		"http://localhost:8080/cb":    true,
		"http://evil.example/cb":      false,
		"javascript:alert(1)":         false,
		"data:text/html,hi":           false,
		"/relative":                   false,
		"https://app.example/cb#frag": false,
		"https://user@app.example/cb": false,
		"custom.scheme:/cb":           false,
		"":                            false,
	} {
		err := validateRedirectURI(uri)
		assert.Equal(t, ok, err == nil, uri)
	}
}
