package authserver

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// sharedKeyFile is one RSA key for every test server: generating a 2048-bit
// key per test would dominate the run time under -race.
var sharedKeyFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authserver-test")
	if err != nil {
		panic(err)
	}
	sharedKeyFile = filepath.Join(dir, "key.pem")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	if err := savePrivateKey(sharedKeyFile, key); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// fakeClock is the injected clock: tests move time instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	testPublicClient  = "http-oauth2-client"
	testServiceClient = "mcp-service"
	testServiceSecret = "mcp-service-dev-secret"
	testRedirect      = "http://127.0.0.1:3001/callback"
	testResource      = "http://127.0.0.1:3003/mcp"
	testConfClient    = "conf-client"
	testConfSecret    = "conf-client-secret"
	testConfRedirect  = "https://app.example.test/cb"
	testOtherPublic   = "other-public"
)

// env is one server under test, reachable over real HTTP on 127.0.0.1.
type env struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	clock  *fakeClock
	client *http.Client
}

func testConfig(clock *fakeClock) Config {
	cfg := DefaultConfig()
	cfg.Server.Issuer = "http://issuer.test"
	cfg.Server.AllowInsecureHTTP = true // a name, never dialled: httptest serves 127.0.0.1
	cfg.Keys.PrivateKeyFile = sharedKeyFile
	cfg.Mock.AutoApprove = true
	cfg.Mock.ControlAPI = true
	cfg.Now = clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Clients = append(cfg.Clients,
		ClientConfig{
			ClientID: testConfClient, ClientSecret: testConfSecret, ClientName: "Confidential",
			RedirectURIs: []string{testConfRedirect},
			GrantTypes:   []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials},
			Scopes:       DefaultScopes, TokenEndpointAuthMethod: AuthClientSecretBasic,
		},
		ClientConfig{
			ClientID: testOtherPublic, RedirectURIs: []string{testRedirect},
			GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
			Scopes:     []string{"openid", "offline_access", "mcp:read"}, TokenEndpointAuthMethod: AuthNone,
		},
	)
	return cfg
}

// newEnv starts a server; mutate adjusts the config first.
func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	clock := newFakeClock()
	cfg := testConfig(clock)
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Close()
	})
	return &env{
		t: t, srv: srv, ts: ts, clock: clock,
		client: &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func (e *env) get(path string, header http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	require.NoError(e.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (e *env) post(path, contentType, body string, header http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (e *env) postForm(path string, form url.Values, header http.Header) *http.Response {
	return e.post(path, "application/x-www-form-urlencoded", form.Encode(), header)
}

func basic(id, secret string) http.Header {
	h := http.Header{}
	req := &http.Request{Header: h}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return h
}

func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// requireOAuthError checks an RFC 6749 §5.2 error response.
func requireOAuthError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"))
	require.Contains(t, resp.Header.Get("Cache-Control"), "no-store")
	body := decode(t, resp)
	require.Equal(t, code, body["error"], "body: %v", body)
}

type authzParams struct {
	clientID, redirect, scope, resource, nonce, loginHint string
}

// authorizeQuery builds the query of an authorization request.
func authorizeQuery(p authzParams, challenge, state string) url.Values {
	if p.clientID == "" {
		p.clientID = testPublicClient
	}
	if p.redirect == "" {
		p.redirect = testRedirect
	}
	q := url.Values{
		"response_type": {"code"}, "client_id": {p.clientID}, "redirect_uri": {p.redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {state},
	}
	for k, v := range map[string]string{"scope": p.scope, "resource": p.resource, "nonce": p.nonce, "login_hint": p.loginHint} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// redirectQuery returns the query of the 302 redirect that answers a GET
// authorization request, after checking its target.
func redirectQuery(t *testing.T, resp *http.Response, target string) url.Values {
	t.Helper()
	return redirectQueryStatus(t, resp, http.StatusFound, target)
}

// decisionRedirectQuery returns the query of the 303 redirect that answers
// the consent form's POST (RFC 9700 §4.12), after checking its target.
func decisionRedirectQuery(t *testing.T, resp *http.Response, target string) url.Values {
	t.Helper()
	return redirectQueryStatus(t, resp, http.StatusSeeOther, target)
}

func redirectQueryStatus(t *testing.T, resp *http.Response, status int, target string) url.Values {
	t.Helper()
	require.Equal(t, status, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, target, loc.Scheme+"://"+loc.Host+loc.Path)
	return loc.Query()
}

// authorized is a code with what is needed to redeem it.
type authorized struct {
	code, verifier, redirect, clientID string
}

// authorize runs an auto-approved authorization and returns the code.
func (e *env) authorize(p authzParams) authorized {
	e.t.Helper()
	verifier, challenge := pkcePair()
	q := authorizeQuery(p, challenge, "st-1")
	resp := e.get("/authorize?"+q.Encode(), nil)
	params := redirectQuery(e.t, resp, q.Get("redirect_uri"))
	require.Empty(e.t, params.Get("error"), "error: %s %s", params.Get("error"), params.Get("error_description"))
	require.Equal(e.t, "st-1", params.Get("state"))
	require.Equal(e.t, e.srv.Issuer(), params.Get("iss"))
	require.NotEmpty(e.t, params.Get("code"))
	return authorized{code: params.Get("code"), verifier: verifier, redirect: q.Get("redirect_uri"), clientID: q.Get("client_id")}
}

func (e *env) exchangeForm(a authorized) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {a.code}, "redirect_uri": {a.redirect},
		"client_id": {a.clientID}, "code_verifier": {a.verifier},
	}
}

func (e *env) exchange(a authorized, extra url.Values) *http.Response {
	form := e.exchangeForm(a)
	for k, v := range extra {
		form[k] = v
	}
	return e.postForm("/token", form, nil)
}

// login runs authorize + exchange and returns the token response.
func (e *env) login(p authzParams) map[string]any {
	e.t.Helper()
	a := e.authorize(p)
	extra := url.Values{}
	if p.resource != "" {
		extra.Set("resource", p.resource)
	}
	resp := e.exchange(a, extra)
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	return decode(e.t, resp)
}

func (e *env) refresh(token, clientID string, extra url.Values) *http.Response {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {clientID}}
	for k, v := range extra {
		form[k] = v
	}
	return e.postForm("/token", form, nil)
}

func (e *env) introspect(token string) map[string]any {
	e.t.Helper()
	resp := e.postForm("/introspect", url.Values{"token": {token}}, basic(testServiceClient, testServiceSecret))
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	return decode(e.t, resp)
}

// verify checks a JWT against the served JWKS with keyfunc, independently
// of the server's own verification code.
func (e *env) verify(token string, opts ...jwt.ParserOption) jwt.MapClaims {
	e.t.Helper()
	resp := e.get("/jwks", nil)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	kf, err := keyfunc.NewJWKSetJSON(raw)
	require.NoError(e.t, err)
	claims := jwt.MapClaims{}
	opts = append(opts, jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithTimeFunc(e.clock.Now))
	_, err = jwt.ParseWithClaims(token, claims, kf.Keyfunc, opts...)
	require.NoError(e.t, err)
	return claims
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
