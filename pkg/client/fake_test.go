package client

// In-process fakes for the tests: a small authorization server (metadata,
// DCR, authorize with auto-approve, token with PKCE and refresh rotation,
// revoke) and a real SDK MCP server behind auth.RequireBearerToken.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

type fakeClient struct {
	id, redirect string
}

type fakeCode struct {
	client, redirect, challenge, resource, scope, user string
}

type fakeToken struct {
	client, user, scope, resource string
	expiry                        time.Time
}

type fakeAS struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	clients  map[string]fakeClient
	codes    map[string]fakeCode
	access   map[string]fakeToken
	refresh  map[string]fakeToken
	revoked  []string
	lastAuth url.Values

	// knobs
	methods        []string // code_challenge_methods_supported
	wrongState     bool
	wrongIss       bool
	deny           bool
	ttl            time.Duration
	tokenDelay     time.Duration
	tokenFailures  atomic.Int32 // the next N token requests get 500 server_error, unprocessed
	tokenRequests  atomic.Int32
	grantedScope   func(requested string) string
	registrations  atomic.Int32
	refreshes      atomic.Int32
	codeExchanges  atomic.Int32
	authorizations atomic.Int32
	seen           seenRequests
}

// seenRequests records the X-Request-Id of every request a fake receives.
type seenRequests struct {
	mu   sync.Mutex
	list []seenRequest
}

type seenRequest struct {
	what, requestID string
}

func (s *seenRequests) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if len(s.list) < 10_000 {
			s.list = append(s.list, seenRequest{what: r.Method + " " + r.URL.Path, requestID: r.Header.Get("X-Request-Id")})
		}
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// take returns the requests recorded so far and forgets them.
func (s *seenRequests) take() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.list
	s.list = nil
	return l
}

func newFakeAS(t *testing.T) *fakeAS {
	as := &fakeAS{t: t, clients: map[string]fakeClient{}, codes: map[string]fakeCode{},
		access: map[string]fakeToken{}, refresh: map[string]fakeToken{},
		methods: []string{"S256"}, ttl: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", as.metadata)
	mux.HandleFunc("POST /register", as.register)
	mux.HandleFunc("GET /authorize", as.authorize)
	mux.HandleFunc("POST /token", as.token)
	mux.HandleFunc("POST /revoke", as.revoke)
	as.srv = httptest.NewServer(as.seen.wrap(mux))
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) URL() string { return as.srv.URL }

func randText() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthErr(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func (as *fakeAS) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer":                                         as.URL(),
		"authorization_endpoint":                         as.URL() + "/authorize",
		"token_endpoint":                                 as.URL() + "/token",
		"registration_endpoint":                          as.URL() + "/register",
		"revocation_endpoint":                            as.URL() + "/revoke",
		"response_types_supported":                       []string{"code"},
		"code_challenge_methods_supported":               as.methods,
		"scopes_supported":                               []string{"mcp:read", "mcp:write", "offline_access"},
		"token_endpoint_auth_methods_supported":          []string{"none"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (as *fakeAS) register(w http.ResponseWriter, r *http.Request) {
	var meta oauthex.ClientRegistrationMetadata
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&meta); err != nil || len(meta.RedirectURIs) == 0 {
		oauthErr(w, 400, "invalid_client_metadata")
		return
	}
	as.registrations.Add(1)
	id := "dcr-" + randText()
	as.mu.Lock()
	as.clients[id] = fakeClient{id: id, redirect: meta.RedirectURIs[0]}
	as.mu.Unlock()
	writeJSON(w, 201, map[string]any{"client_id": id, "redirect_uris": meta.RedirectURIs, "token_endpoint_auth_method": "none"})
}

// addClient preregisters a public client.
func (as *fakeAS) addClient(id, redirect string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.clients[id] = fakeClient{id: id, redirect: redirect}
}

// forgetClients drops every client, as if the AS lost its registrations.
func (as *fakeAS) forgetClients() {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.clients = map[string]fakeClient{}
}

func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	as.mu.Lock()
	as.lastAuth = q
	c, ok := as.clients[q.Get("client_id")]
	as.mu.Unlock()
	if !ok {
		oauthErr(w, 400, "invalid_client") // never redirect to an unvalidated URI
		return
	}
	if q.Get("redirect_uri") != c.redirect || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		oauthErr(w, 400, "invalid_request")
		return
	}
	as.authorizations.Add(1)
	dest, _ := url.Parse(c.redirect)
	out := url.Values{}
	state, iss := q.Get("state"), as.URL()
	if as.wrongState {
		state = "forged"
	}
	if as.wrongIss {
		iss = "http://evil.example"
	}
	out.Set("state", state)
	out.Set("iss", iss)
	if as.deny {
		out.Set("error", "access_denied")
	} else {
		code := randText()
		user := q.Get("login_hint")
		if user == "" {
			user = "alice"
		}
		as.mu.Lock()
		as.codes[code] = fakeCode{client: c.id, redirect: c.redirect, challenge: q.Get("code_challenge"),
			resource: q.Get("resource"), scope: q.Get("scope"), user: user}
		as.mu.Unlock()
		out.Set("code", code)
	}
	dest.RawQuery = out.Encode()
	http.Redirect(w, r, dest.String(), http.StatusFound)
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	as.tokenRequests.Add(1)
	if as.tokenDelay > 0 {
		time.Sleep(as.tokenDelay) // widen the window for concurrent refreshers
	}
	if as.tokenFailures.Add(-1) >= 0 {
		oauthErr(w, 500, "server_error")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(w, 400, "invalid_request")
		return
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	clientID := r.PostForm.Get("client_id")
	if _, ok := as.clients[clientID]; !ok {
		oauthErr(w, 401, "invalid_client")
		return
	}
	var tok fakeToken
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		as.codeExchanges.Add(1)
		c, ok := as.codes[r.PostForm.Get("code")]
		delete(as.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || c.client != clientID || c.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || c.resource != r.PostForm.Get("resource") {
			oauthErr(w, 400, "invalid_grant")
			return
		}
		scope := c.scope
		if as.grantedScope != nil {
			scope = as.grantedScope(scope)
		}
		tok = fakeToken{client: clientID, user: c.user, scope: scope, resource: c.resource}
	case "refresh_token":
		as.refreshes.Add(1)
		old, ok := as.refresh[r.PostForm.Get("refresh_token")]
		delete(as.refresh, r.PostForm.Get("refresh_token")) // rotation
		if !ok || old.client != clientID {
			oauthErr(w, 400, "invalid_grant")
			return
		}
		tok = old
	default:
		oauthErr(w, 400, "unsupported_grant_type")
		return
	}
	tok.expiry = time.Now().Add(as.ttl)
	access := fakeJWT(map[string]any{"iss": as.URL(), "sub": tok.user, "aud": tok.resource, "scope": tok.scope,
		"client_id": tok.client, "exp": tok.expiry.Unix(), "jti": randText()})
	refresh := randText()
	as.access[access] = tok
	as.refresh[refresh] = tok
	writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer",
		"expires_in": int(as.ttl.Seconds()), "refresh_token": refresh, "scope": tok.scope})
}

func (as *fakeAS) revoke(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	as.mu.Lock()
	defer as.mu.Unlock()
	tok := r.PostForm.Get("token")
	as.revoked = append(as.revoked, tok)
	delete(as.refresh, tok)
	delete(as.access, tok)
	w.WriteHeader(200)
}

// fakeJWT makes a JWT-shaped token for display tests: the fake resource
// server looks tokens up instead of verifying a signature.
func fakeJWT(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	p, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "." + randText()
}

// verify is the fake resource server's token check.
func (as *fakeAS) verify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	t, ok := as.access[token]
	if !ok {
		return nil, auth.ErrInvalidToken
	}
	return &auth.TokenInfo{Scopes: strings.Fields(t.scope), Expiration: t.expiry, UserID: t.user}, nil
}

// revokeAllAccess makes every access token invalid (as if expired).
func (as *fakeAS) revokeAllAccess() {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.access = map[string]fakeToken{}
}

// fakeMCP is a real SDK MCP server protected by the fake AS.
type fakeMCP struct {
	srv  *httptest.Server
	seen seenRequests
	// requests counts requests carrying each access token.
	unauthorized atomic.Int32
}

func (m *fakeMCP) URL() string { return m.srv.URL + "/mcp" }

func newFakeMCP(t *testing.T, as *fakeAS) *fakeMCP {
	m := &fakeMCP{}
	server := mcp.NewServer(&mcp.Implementation{Name: "fake-mcp", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "you are " + req.Extra.TokenInfo.UserID}}}, nil, nil
	})
	type noteIn struct {
		Text  string `json:"text"`
		Count int    `json:"count"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "add_note", Description: "needs mcp:write"}, func(ctx context.Context, req *mcp.CallToolRequest, in noteIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("noted %q x%d", in.Text, in.Count)}}}, nil, nil
	})
	server.AddResource(&mcp.Resource{URI: "file://demo/readme.txt", Name: "readme", MIMEType: "text/plain"},
		func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "file://demo/readme.txt", Text: "hello from the demo\nline 2"}}}, nil
		})
	server.AddPrompt(&mcp.Prompt{Name: "summarize", Description: "summarize notes", Arguments: []*mcp.PromptArgument{{Name: "style"}}},
		func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	mux := http.NewServeMux()
	m.srv = httptest.NewUnstartedServer(m.seen.wrap(mux))
	m.srv.Start()
	t.Cleanup(m.srv.Close)
	prmURL := m.srv.URL + "/.well-known/oauth-protected-resource/mcp"
	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: m.URL(), AuthorizationServers: []string{as.URL()}, ScopesSupported: []string{"mcp:read"},
	}))
	protected := auth.RequireBearerToken(as.verify, &auth.RequireBearerTokenOptions{ResourceMetadataURL: prmURL, Scopes: []string{"mcp:read"}})
	mux.Handle("/mcp", protected(stepUp(as, prmURL, handler)))
	return m
}

// stepUp answers 403 insufficient_scope to tools/call add_note without mcp:write.
func stepUp(as *fakeAS, prmURL string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			info := auth.TokenInfoFromContext(r.Context())
			if strings.Contains(string(body), `"add_note"`) && strings.Contains(string(body), `tools/call`) &&
				!containsStr(info.Scopes, "mcp:write") {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata=%q`, prmURL))
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
