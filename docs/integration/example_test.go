package integration_test

// The examples of docs/INTEGRATION.md. Example_protectYourOwnServer and
// Example_mockStackInProcess run against the mock authorization server
// started in-process with httptest, so the snippets are proven, not only
// compiled.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/client"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/mcpserver"
)

// ---------------------------------------------------------------------------
// 1. Protect your own MCP server: verifier, per-tool scopes, audit log.

// accessClaims are the JWT access token claims a resource server reads
// (RFC 9068 §2.2).
type accessClaims struct {
	jwt.RegisteredClaims
	Scope    string `json:"scope"`
	ClientID string `json:"client_id"`
	Email    string `json:"email"`
}

// newVerifier returns an auth.TokenVerifier with the checks of
// pkg/mcpserver/verifier.go: keys from the issuer's JWKS (cached and
// refreshed by keyfunc), an algorithm allowlist checked before any key
// lookup, exact issuer, this server's resource as audience (RFC 8707),
// exp required, a small leeway.
func newVerifier(ctx context.Context, jwksURL, issuer, resource string) (auth.TokenVerifier, error) {
	keys, err := keyfunc.NewDefaultCtx(ctx, []string{jwksURL})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", jwksURL, err)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "ES256"}), // never none or HS256
		jwt.WithIssuer(issuer),
		jwt.WithAudience(resource),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30*time.Second),
	)
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		var c accessClaims
		keyFor := func(t *jwt.Token) (any, error) {
			// RFC 9068 §4: an ID token (typ JWT) signed by the same key is not an access token.
			if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") &&
				!strings.EqualFold(typ, "application/at+jwt") {
				return nil, errors.New(`token typ is not "at+jwt"`)
			}
			return keys.KeyfuncCtx(ctx)(t)
		}
		if _, err := parser.ParseWithClaims(token, &c, keyFor); err != nil {
			return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
		}
		if c.Subject == "" {
			return nil, fmt.Errorf("%w: no sub", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{
			Scopes: strings.Fields(c.Scope), Expiration: c.ExpiresAt.Time,
			UserID: c.Subject, // the SDK binds each session to this user
			Extra:  map[string]any{"client_id": c.ClientID, "email": c.Email, "jti": c.ID},
		}, nil
	}, nil
}

// toolScopes are the scopes each tools/call needs, besides the base scope.
var toolScopes = map[string][]string{"greet": {"mcp:read"}, "save": {"mcp:read", "mcp:write"}}

// requireToolScopes answers a tools/call whose token lacks a scope of that
// tool with 403 insufficient_scope naming every scope it needs (MCP
// authorization "Scope Challenge Handling"), so clients can step up. It runs
// after auth.RequireBearerToken, which put the TokenInfo in the context.
func requireToolScopes(metadataURL string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
			need := toolScopes[msg.Params.Name]
			info := auth.TokenInfoFromContext(r.Context())
			for _, s := range need {
				if info == nil || !slices.Contains(info.Scopes, s) {
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(
						`Bearer error="insufficient_scope", scope=%q, resource_metadata=%q`,
						strings.Join(need, " "), metadataURL))
					http.Error(w, "insufficient_scope", http.StatusForbidden)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// auditTo writes one mcpserver.AuditRecord (the JSONL format of
// http-mcp-mock-server's audit log) per request: who, which client, which
// token by its jti, never the token itself.
func auditTo(out io.Writer, next http.Handler) http.Handler {
	var mu sync.Mutex // requests run concurrently; one record per line
	enc := json.NewEncoder(out)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		rec := mcpserver.AuditRecord{Time: start.UTC(), HTTPMethod: r.Method, Path: r.URL.Path,
			Outcome: mcpserver.OutcomeAllowed, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
		if info := auth.TokenInfoFromContext(r.Context()); info != nil {
			rec.Subject = info.UserID
			rec.ClientID, _ = info.Extra["client_id"].(string)
			rec.JTI, _ = info.Extra["jti"].(string)
		}
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(rec); err != nil {
			log.Printf("audit: %v", err) // a real server may refuse the request instead (fail closed)
		}
	})
}

// lockedBuffer is an io.Writer the example can read while requests write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newProtectedServer assembles your MCP server behind the three pieces.
func newProtectedServer(verify auth.TokenVerifier, issuer, resource string, audit io.Writer) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "my-server", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "greet", Description: "Greets the caller"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			user := req.Extra.TokenInfo.UserID // verified: the middleware ran first
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + user}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "save", Description: "Needs mcp:write (see toolScopes)"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "saved for " + req.Extra.TokenInfo.UserID}}}, nil, nil
		})
	metadataURL := strings.Replace(resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
	mux := http.NewServeMux()
	// RFC 9728: where clients learn which authorization server to use.
	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(
		&oauthex.ProtectedResourceMetadata{Resource: resource, AuthorizationServers: []string{issuer},
			ScopesSupported: []string{"mcp:read", "mcp:write"}, BearerMethodsSupported: []string{"header"}}))
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	bearer := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: metadataURL, Scopes: []string{"mcp:read"}})
	mux.Handle("/mcp", bearer(auditTo(audit, requireToolScopes(metadataURL, mcpHandler))))
	return mux
}

// Your own MCP server, protected by the mock authorization server's tokens.
func Example_protectYourOwnServer() {
	ctx := context.Background()
	as := startAuthServer()
	defer as.Close()
	var audit lockedBuffer
	var handler http.Handler
	mine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer mine.Close()
	resource := mine.URL + "/mcp"

	verify, err := newVerifier(ctx, as.URL+"/jwks", as.URL, resource)
	if err != nil {
		log.Fatal(err)
	}
	handler = newProtectedServer(verify, as.URL, resource, &audit)

	// No token: 401 with the RFC 9728 challenge.
	resp, err := http.Post(resource, "application/json", strings.NewReader(`{}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata="))

	// The pkg/client handler logs in (headless, the mock approves as alice).
	session := connect(ctx, resource)
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*mcp.TextContent).Text)

	// save needs mcp:write, which the first login did not ask for: the server
	// answers 403 insufficient_scope, the client steps up and retries.
	res, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "save", Arguments: map[string]any{}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*mcp.TextContent).Text)
	fmt.Println(strings.Contains(audit.String(), `"subject":"alice"`), strings.Contains(audit.String(), "eyJ"))
	// Output:
	// 401 true
	// hello alice
	// saved for alice
	// true false
}

// ---------------------------------------------------------------------------
// 2. Add OAuth to your own Go MCP client.

// connect opens an MCP session with OAuth: on the server's 401 the
// pkg/client Handler discovers (RFC 9728, RFC 8414), registers (RFC 7591),
// logs in with PKCE and retries; it refreshes and steps up later on.
func connect(ctx context.Context, serverURL string) *mcp.ClientSession {
	oauthHTTP, mcpHTTP := client.NewHTTPClients(30*time.Second, 3) // timeouts; retries idempotent calls and 5xx/429 token responses
	redirect := "http://127.0.0.1:3001/callback"
	h, err := client.NewHandler(client.HandlerConfig{
		ServerURL:   serverURL,
		RedirectURI: redirect,
		// Headless: for an authorization server that approves at once (the
		// mock, CI). Interactive: (&client.LoopbackFetcher{RedirectURI: redirect,
		// Timeout: 5 * time.Minute, Out: os.Stderr}).Fetch opens the browser.
		Fetcher:    client.HeadlessFetcher(oauthHTTP, redirect),
		HTTPClient: oauthHTTP,
		Cache:      client.NewCache(""), // in memory; a path keeps tokens in a 0600 file
		Events:     func(e client.Event) { /* e.Step, e.Detail: progress, never a secret */ },
	})
	if err != nil {
		log.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "my-client", Version: "1.0.0"}, nil)
	session, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: serverURL, HTTPClient: mcpHTTP, OAuthHandler: h, DisableStandaloneSSE: true}, nil)
	if err != nil {
		log.Fatal(err)
	}
	return session
}

// ---------------------------------------------------------------------------
// 3. The whole mock stack inside a Go test: authserver.New and
// mcpserver.New are http.Handlers.

// startAuthServer starts the mock authorization server on a loopback port,
// auto-approving as alice, with a throw-away signing key.
func startAuthServer() *httptest.Server {
	dir, err := os.MkdirTemp("", "integration-example")
	if err != nil {
		log.Fatal(err)
	}
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	cfg := authserver.DefaultConfig()
	cfg.Server.Issuer = ts.URL // the issuer must be the URL clients use
	cfg.Keys.PrivateKeyFile = filepath.Join(dir, "private_key.pem")
	cfg.Mock.AutoApprove = true
	cfg.Logger = discardLogger()
	as, err := authserver.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	handler = as
	// Test controls are plain methods too: as.SetLifetimes, as.QueueFault,
	// as.DenyNextLogin, as.RotateKey (the /control API calls these).
	ts.Config.RegisterOnShutdown(func() { _ = as.Close(); _ = os.RemoveAll(dir) })
	return ts
}

// The mock authorization server, the protected MCP server and the client,
// all in one process.
func Example_mockStackInProcess() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	as := startAuthServer()
	defer as.Close()

	dir, err := os.MkdirTemp("", "integration-example-mcp")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var handler http.Handler
	ms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer ms.Close()
	cfg := mcpserver.DefaultConfig()
	cfg.Server.Resource = ms.URL + "/mcp"                                  // the aud it accepts
	cfg.Auth.Issuer = as.URL                                               // the one issuer it trusts
	cfg.Tools["echo"] = mcpserver.ToolConfig{Scopes: []string{"mcp:read"}} // per-tool scopes
	cfg.Audit.File = filepath.Join(dir, "audit.jsonl")
	srv, err := mcpserver.New(cfg, mcpserver.Options{Logger: discardLogger()})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	handler = srv.Handler()
	srv.Start(ctx) // loads the JWKS in the background
	if err := waitReady(srv); err != nil {
		log.Fatal(err)
	}

	session := connect(ctx, cfg.Server.Resource)
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		log.Fatal(err)
	}
	var who struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &who)
	fmt.Println(who.Subject)
	// Output:
	// alice
}

// waitReady polls srv.Ready (the JWKS loaded), bounded in count and time.
func waitReady(srv *mcpserver.Server) error {
	for range 200 {
		if srv.Ready() == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("MCP server not ready after 2s")
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
