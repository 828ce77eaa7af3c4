package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testRedirect = "http://127.0.0.1:3001/callback"

type testEnv struct {
	as    *fakeAS
	mcp   *fakeMCP
	cache *Cache
}

func newEnv(t *testing.T) *testEnv {
	as := newFakeAS(t)
	m := newFakeMCP(t, as)
	return &testEnv{as: as, mcp: m, cache: NewCache(filepath.Join(t.TempDir(), "tokens.json"))}
}

func (e *testEnv) handler(t *testing.T, mutate func(*HandlerConfig)) *Handler {
	t.Helper()
	cfg := HandlerConfig{ServerURL: e.mcp.URL(), RedirectURI: testRedirect,
		Fetcher: HeadlessFetcher(http.DefaultClient, testRedirect), HTTPClient: http.DefaultClient, Cache: e.cache}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := NewHandler(cfg)
	require.NoError(t, err)
	return h
}

func connectSession(t *testing.T, h *Handler) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.cfg.ServerURL,
		OAuthHandler: h, DisableStandaloneSSE: true}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func whoami(t *testing.T, s *mcp.ClientSession) string {
	t.Helper()
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	require.NoError(t, err)
	return contentText(res.Content)
}

func TestFlowDCRHeadlessAndCacheReuse(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, func(c *HandlerConfig) { c.LoginHint = "bob" })
	s := connectSession(t, h)
	assert.Equal(t, "you are bob", whoami(t, s))
	assert.EqualValues(t, 1, env.as.registrations.Load())

	// The authorization request carried PKCE S256 and the resource (RFC 8707).
	env.as.mu.Lock()
	q := env.as.lastAuth
	env.as.mu.Unlock()
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Equal(t, env.mcp.URL(), q.Get("resource"))
	assert.Contains(t, q.Get("scope"), "mcp:read")
	assert.Contains(t, q.Get("scope"), "offline_access")

	// Cached: a new handler (a new run) uses the token without any login.
	entry := env.cache.FindByResource(env.mcp.URL())
	require.NotNil(t, entry)
	assert.Equal(t, RegistrationDynamic, entry.Client.Registration)
	assert.Equal(t, env.as.URL(), entry.Issuer)
	h2 := env.handler(t, nil)
	s2 := connectSession(t, h2)
	assert.Equal(t, "you are bob", whoami(t, s2))
	assert.EqualValues(t, 1, env.as.authorizations.Load())

	// A forced login reuses the registered client: no second registration.
	require.NoError(t, h2.Login(context.Background()))
	assert.EqualValues(t, 1, env.as.registrations.Load())
	assert.EqualValues(t, 2, env.as.authorizations.Load())
}

func TestFlowPreregisteredClient(t *testing.T) {
	env := newEnv(t)
	env.as.addClient("http-oauth2-client", testRedirect)
	h := env.handler(t, func(c *HandlerConfig) { c.ClientID = "http-oauth2-client" })
	s := connectSession(t, h)
	assert.Equal(t, "you are alice", whoami(t, s))
	assert.EqualValues(t, 0, env.as.registrations.Load())
	assert.Equal(t, RegistrationPreregistered, env.cache.FindByResource(env.mcp.URL()).Client.Registration)
}

func TestFlowForgottenClientRegistersAgain(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, nil)
	require.NoError(t, h.Login(context.Background()))
	env.as.forgetClients()
	h2 := env.handler(t, nil)
	require.NoError(t, h2.Login(context.Background()))
	assert.EqualValues(t, 2, env.as.registrations.Load())
	s := connectSession(t, h2)
	assert.Equal(t, "you are alice", whoami(t, s))
}

func TestFlowRefusesASWithoutS256(t *testing.T) {
	env := newEnv(t)
	env.as.methods = []string{"plain"}
	h := env.handler(t, nil)
	err := h.Login(context.Background())
	require.ErrorIs(t, err, ErrNoS256)
	assert.EqualValues(t, 0, env.as.registrations.Load())
	assert.EqualValues(t, 0, env.as.authorizations.Load())
}

func TestFlowStateAndIssuerChecks(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(*fakeAS)
		want string
	}{
		"wrong state": {func(as *fakeAS) { as.wrongState = true }, "state mismatch"},
		"wrong iss":   {func(as *fakeAS) { as.wrongIss = true }, "does not match expected issuer"},
		"denied":      {func(as *fakeAS) { as.deny = true }, "login denied"},
	} {
		t.Run(name, func(t *testing.T) {
			env := newEnv(t)
			tc.set(env.as)
			err := env.handler(t, nil).Login(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.EqualValues(t, 0, env.as.codeExchanges.Load(), "no code exchanged after a failed check")
			if e := env.cache.FindByResource(env.mcp.URL()); e != nil {
				assert.Nil(t, e.Token, "no token stored after a failed check")
			}
		})
	}
}

func TestFlowStepUpOnInsufficientScope(t *testing.T) {
	env := newEnv(t)
	var events []Event
	h := env.handler(t, func(c *HandlerConfig) { c.Events = func(e Event) { events = append(events, e) } })
	s := connectSession(t, h)
	before := h.Current().Current().Extra("scope")
	assert.NotContains(t, before, "mcp:write")
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "x", "count": 2}})
	require.NoError(t, err)
	assert.Equal(t, `noted "x" x2`, contentText(res.Content))
	scope, _ := h.Current().Current().Extra("scope").(string)
	assert.Contains(t, scope, "mcp:write")
	assert.Contains(t, scope, "mcp:read", "earlier grants kept")
	assert.EqualValues(t, 2, env.as.authorizations.Load())
	assert.True(t, hasEvent(events, "step-up"))
}

func TestFlowStepUpRetryLimit(t *testing.T) {
	env := newEnv(t)
	// The AS never grants mcp:write: the server keeps answering 403.
	env.as.grantedScope = func(string) string { return "mcp:read offline_access" }
	h := env.handler(t, func(c *HandlerConfig) { c.MaxStepUps = 2 })
	s := connectSession(t, h)
	_, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "x"}})
	require.Error(t, err, "the transport retries once after a step-up, then fails")
	assert.EqualValues(t, 2, env.as.authorizations.Load())

	// Further 403s for the same scopes: the handler stops re-authorizing.
	forbidden := func() *http.Response {
		return &http.Response{StatusCode: 403, Body: http.NoBody, Header: http.Header{"Www-Authenticate": {
			`Bearer error="insufficient_scope", scope="mcp:read mcp:write"`}}}
	}
	withToken := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, env.mcp.URL(), nil)
		req.Header.Set("Authorization", "Bearer "+h.Current().Current().AccessToken)
		return req
	}
	require.NoError(t, h.Authorize(context.Background(), withToken(), forbidden()))
	err = h.Authorize(context.Background(), withToken(), forbidden())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "still answers insufficient_scope")
	assert.EqualValues(t, 3, env.as.authorizations.Load(), "1 login + MaxStepUps re-authorizations")
}

func hasEvent(events []Event, step string) bool {
	for _, e := range events {
		if e.Step == step {
			return true
		}
	}
	return false
}

func TestFlowRefreshOn401AndInvalidGrantFallback(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, nil)
	s := connectSession(t, h)
	assert.Equal(t, "you are alice", whoami(t, s))

	// The server stops accepting the access token: one refresh, no login.
	env.as.revokeAllAccess()
	assert.Equal(t, "you are alice", whoami(t, s))
	assert.EqualValues(t, 1, env.as.refreshes.Load())
	assert.EqualValues(t, 1, env.as.authorizations.Load())

	// Now the refresh token dies too: invalid_grant -> new authorization.
	env.as.revokeAllAccess()
	env.as.mu.Lock()
	env.as.refresh = map[string]fakeToken{}
	env.as.mu.Unlock()
	assert.Equal(t, "you are alice", whoami(t, s))
	assert.EqualValues(t, 2, env.as.authorizations.Load())
}

// runCLI runs Main with args and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCLIDemoLoginCallLogout(t *testing.T) {
	env := newEnv(t)
	tokens := filepath.Join(t.TempDir(), "c", "tokens.json")
	common := []string{"--config", writeTestConfig(t), "--server", env.mcp.URL(), "--mode", "headless", "--token-file", tokens}

	out, errOut, code := runCLI(t, append(common, "demo")...)
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"Discovery", "registered dynamically", "code_challenge_method=S256", "you are alice", "hello from the demo", "refresh token rotated: true"} {
		assert.Contains(t, out, want)
	}
	info, err := os.Stat(tokens)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	out, errOut, code = runCLI(t, append(common, "--json", "status")...)
	require.Equal(t, 0, code, errOut)
	var st statusView
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.True(t, st.LoggedIn)
	assert.Equal(t, "alice", st.User)
	assert.NotContains(t, out, NewCache(tokens).FindByResource(env.mcp.URL()).Token.AccessToken, "status never prints secrets")

	out, errOut, code = runCLI(t, append(common, "call", "add_note", "--arg", "text=hi", "--arg", "count=3")...)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "noted \"hi\" x3\n", out)

	out, errOut, code = runCLI(t, append(common, "call", "add_note", "--json", `{"text":"j","count":1}`, "--json")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"content"`)
	assert.Contains(t, out, `noted \"j\" x1`)

	_, errOut, code = runCLI(t, append(common, "call", "add_note", "--arg", "count=many")...)
	assert.Equal(t, 1, code)
	assert.Regexp(t, `^error: call: --arg count: "many" is not an integer\n$`, errOut)

	out, errOut, code = runCLI(t, append(common, "token")...)
	require.Equal(t, 0, code, errOut)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "."), 3)

	registered := NewCache(tokens).FindByResource(env.mcp.URL()).Client
	require.NotNil(t, registered)
	out, errOut, code = runCLI(t, append(common, "logout")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "refresh token revoked")
	assert.Len(t, env.as.revoked, 1)
	left := NewCache(tokens).FindByResource(env.mcp.URL())
	require.NotNil(t, left, "the client registration stays")
	assert.Nil(t, left.Token, "the tokens are gone")
	assert.Equal(t, registered.ClientID, left.Client.ClientID)

	// The next login reuses the client; a logout with no tokens cached
	// forgets the registration.
	_, errOut, code = runCLI(t, append(common, "login")...)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, registered.ClientID, NewCache(tokens).FindByResource(env.mcp.URL()).Client.ClientID, "no new registration")
	_, errOut, code = runCLI(t, append(common, "logout")...)
	require.Equal(t, 0, code, errOut)
	out, errOut, code = runCLI(t, append(common, "logout")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "forgot the client registration")
	assert.Nil(t, NewCache(tokens).FindByResource(env.mcp.URL()))
	assert.Len(t, env.as.revoked, 2, "nothing revoked without tokens")
}

func TestCLIErrorsAreOneLine(t *testing.T) {
	_, errOut, code := runCLI(t, "--config", writeTestConfig(t), "--server", "http://127.0.0.1:1/mcp", "--mode", "headless", "--no-cache", "login")
	assert.Equal(t, 1, code)
	assert.Regexp(t, `^error: login: server unreachable: [^\n]+\n$`, errOut)
}

// writeTestConfig writes an empty config so the tests do not depend on the
// working directory's file.
func writeTestConfig(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "client.toml")
	require.NoError(t, os.WriteFile(p, []byte("[http]\ntimeout = \"10s\"\n[oauth]\nlogin_timeout = \"10s\"\n"), 0o600))
	return p
}

var _ = time.Second

func TestDiscoveryRefusesResourceMismatch(t *testing.T) {
	env := newEnv(t)
	// A resource server whose metadata names another resource.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"resource": "https://evil.example/mcp", "authorization_servers": []string{env.as.URL()}})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
		w.WriteHeader(401)
	})
	h := env.handler(t, func(c *HandlerConfig) { c.ServerURL = srv.URL + "/mcp" })
	err := h.Login(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is for another resource")
	assert.EqualValues(t, 0, env.as.registrations.Load())
}

func TestConcurrent401sShareOneRefresh(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, nil)
	s := connectSession(t, h)
	assert.Equal(t, "you are alice", whoami(t, s))
	env.as.revokeAllAccess() // every in-flight call now gets a 401
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
			if assert.NoError(t, err) {
				assert.Equal(t, "you are alice", contentText(res.Content))
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, env.as.refreshes.Load(), "one refresh for all the 401s")
	assert.EqualValues(t, 1, env.as.authorizations.Load(), "no new login")
}

func TestFailedLoginKeepsTheRegistration(t *testing.T) {
	env := newEnv(t)
	env.as.deny = true
	require.ErrorContains(t, env.handler(t, nil).Login(context.Background()), "login denied")
	env.as.deny = false
	require.NoError(t, env.handler(t, nil).Login(context.Background()))
	assert.EqualValues(t, 1, env.as.registrations.Load(), "the client registered by the failed login is reused")
}

func TestConfiguredScopesReplaceDiscovered(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, func(c *HandlerConfig) { c.Scopes = []string{"mcp:read", "mcp:write"} })
	require.NoError(t, h.Login(context.Background()))
	env.as.mu.Lock()
	scope := env.as.lastAuth.Get("scope")
	env.as.mu.Unlock()
	assert.Contains(t, scope, "mcp:write")
}

func TestCLIResourcesPromptsAndEmptyState(t *testing.T) {
	env := newEnv(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	common := []string{"--config", writeTestConfig(t), "--server", env.mcp.URL(), "--mode", "headless", "--token-file", tokens}

	out, errOut, code := runCLI(t, append(common, "status")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "not logged in")
	out, errOut, code = runCLI(t, append(common, "logout")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "nothing to do")

	out, errOut, code = runCLI(t, append(common, "resources")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "file://demo/readme.txt")
	out, errOut, code = runCLI(t, append(common, "--json", "read", "file://demo/readme.txt")...)
	require.Equal(t, 0, code, errOut)
	var rr mcp.ReadResourceResult
	require.NoError(t, json.Unmarshal([]byte(out), &rr))
	assert.Contains(t, rr.Contents[0].Text, "hello from the demo")
	out, errOut, code = runCLI(t, append(common, "prompts")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "summarize")
	assert.Contains(t, out, "arguments: style")

	_, errOut, code = runCLI(t, append(common, "call", "nope")...)
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: call: tool \"nope\": not offered by the server\n", errOut)
	_, errOut, code = runCLI(t, append(common, "frobnicate")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown")
	assert.EqualValues(t, 1, env.as.authorizations.Load(), "one login for all these commands")
}

func TestCLITimeoutAndEnvOverride(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	t.Setenv("CLIENT_MCP_SERVER_URL", hang.URL+"/mcp")
	t.Setenv("CLIENT_HTTP_MAX_RETRIES", "0")
	start := time.Now()
	_, errOut, code := runCLI(t, "--config", writeTestConfig(t), "--timeout", "300ms", "--no-cache", "--mode", "headless", "tools")
	assert.Equal(t, 1, code)
	assert.Regexp(t, `^error: tools: timed out: [^\n]+\n$`, errOut)
	assert.Contains(t, errOut, hang.URL, "the line names where it failed")
	assert.Less(t, time.Since(start), 5*time.Second)
}
