package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// scenarioNames lists the scenarios in the order they run.
var scenarioNames = []string{"mcp-echo", "mcp-echo-noauth", "mcp-echo-noauth-bearer", "token-cc", "refresh", "invalid-token", "mcp-soak"}

// defaultScenarios are run when -scenario is not given: every scenario with a
// duration bound (mcp-soak runs to a call count and is asked for by name).
var defaultScenarios = "mcp-echo,mcp-echo-noauth,token-cc,refresh,invalid-token"

// env is what scenarios share: the flags, the HTTP client, and what was
// discovered about the servers (lazily, since a run of token-cc alone needs
// no MCP server).
type env struct {
	// mu guards as and resource, discovered by whichever worker's setup
	// needs them first.
	mu       sync.Mutex
	opts     options
	client   *http.Client
	asBase   *url.URL
	mcpURL   *url.URL
	noauth   *url.URL
	as       *oauthClient
	resource string
}

// authServer discovers the authorization server on first use.
func (e *env) authServer(ctx context.Context) (*oauthClient, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.as != nil {
		return e.as, nil
	}
	as, err := discoverAS(ctx, e.client, e.asBase)
	if err != nil {
		return nil, err
	}
	e.as = as
	return as, nil
}

// mcpResource returns the resource identifier tokens for the MCP server must
// carry as aud: -resource, or the `resource` of the server's protected
// resource metadata (RFC 9728), read from the path-inserted well-known URL.
func (e *env) mcpResource(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.resource != "" {
		return e.resource, nil
	}
	meta := *e.mcpURL
	meta.Path = "/.well-known/oauth-protected-resource" + e.mcpURL.Path
	meta.RawQuery = ""
	var doc struct {
		Resource string `json:"resource"`
	}
	if err := getJSON(ctx, e.client, meta.String(), &doc); err != nil {
		return "", fmt.Errorf("protected resource metadata (or give -resource): %w", err)
	}
	if doc.Resource == "" {
		return "", fmt.Errorf("protected resource metadata at %s has no resource", meta.String())
	}
	e.resource = doc.Resource
	return e.resource, nil
}

// accessToken obtains a token for the MCP server as the -mcp-token-grant
// says: "code" logs in as -user (a user's token, as the project's client
// would hold), "client_credentials" uses the confidential client.
func (e *env) accessToken(ctx context.Context) (string, error) {
	as, err := e.authServer(ctx)
	if err != nil {
		return "", err
	}
	resource, err := e.mcpResource(ctx)
	if err != nil {
		return "", err
	}
	var tok *tokenResponse
	switch e.opts.mcpTokenGrant {
	case "code":
		tok, err = as.login(ctx, e.loginParams(resource))
	case "client_credentials":
		tok, err = as.clientCredentials(ctx, e.opts.clientID, e.opts.clientSecret, e.opts.ccScope, resource)
	default:
		err = fmt.Errorf("-mcp-token-grant %q: want code or client_credentials", e.opts.mcpTokenGrant)
	}
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

func (e *env) loginParams(resource string) loginParams {
	return loginParams{
		clientID: e.opts.publicClient, redirectURI: e.opts.redirectURI,
		scope: e.opts.scope, resource: resource, user: e.opts.user,
	}
}

// scenario returns the worker constructor and the limits of a named scenario.
func (e *env) scenario(ctx context.Context, name string) (newWorkerFunc, error) {
	switch name {
	case "mcp-echo":
		return e.newEchoWorker(e.mcpURL, true), nil
	case "mcp-soak":
		return e.newSoakWorkers(ctx)
	case "mcp-echo-noauth":
		return e.newEchoWorker(e.noauth, false), nil
	case "mcp-echo-noauth-bearer":
		// The server ignores the token; what it still pays for is
		// receiving the header (about a kilobyte with an RS256 token).
		return e.newEchoWorker(e.noauth, true), nil
	case "token-cc":
		return e.newClientCredentialsWorker, nil
	case "refresh":
		return e.newRefreshWorker, nil
	case "invalid-token":
		return e.newInvalidTokenWorker(ctx)
	}
	return nil, fmt.Errorf("unknown scenario %q (known: %v)", name, scenarioNames)
}

// echoWorker calls the echo tool in its own MCP session.
type echoWorker struct {
	session *mcpSession
	args    json.RawMessage
}

func (w *echoWorker) do(ctx context.Context) error {
	return w.session.callTool(ctx, "echo", w.args)
}

func (w *echoWorker) close(ctx context.Context) { w.session.close(ctx) }

// newEchoWorker logs in (when the server wants a token) and initializes one
// session per worker, reused for every call, as a real client would.
func (e *env) newEchoWorker(endpoint *url.URL, withToken bool) newWorkerFunc {
	return func(ctx context.Context, _ int) (worker, error) {
		if endpoint == nil {
			return nil, errors.New("no MCP endpoint given")
		}
		s := &mcpSession{client: e.client, endpoint: endpoint.String()}
		if withToken {
			tok, err := e.accessToken(ctx)
			if err != nil {
				return nil, err
			}
			s.token = tok
		}
		if err := s.initialize(ctx); err != nil {
			return nil, err
		}
		return &echoWorker{session: s, args: json.RawMessage(e.opts.echoArgs)}, nil
	}
}

// sharedEchoWorker lets every worker call through one session (mcp-soak: a
// single long stateful session).
type sharedEchoWorker struct {
	echoWorker
	owner bool
}

func (w *sharedEchoWorker) close(ctx context.Context) {
	if w.owner {
		w.session.close(ctx)
	}
}

// newSoakWorkers initializes one session on the MCP server with auth and
// hands it to every worker.
func (e *env) newSoakWorkers(ctx context.Context) (newWorkerFunc, error) {
	return e.sharedSessionWorkers(ctx, e.mcpURL, true)
}

// sharedSessionWorkers initializes one session and hands it to every worker.
func (e *env) sharedSessionWorkers(ctx context.Context, endpoint *url.URL, withToken bool) (newWorkerFunc, error) {
	first, err := e.newEchoWorker(endpoint, withToken)(ctx, 0)
	if err != nil {
		return nil, err
	}
	shared := first.(*echoWorker)
	return func(_ context.Context, i int) (worker, error) {
		return &sharedEchoWorker{echoWorker: *shared, owner: i == 0}, nil
	}, nil
}

// optionalResource is the MCP resource when one is known or an MCP server
// answers, else "": the token scenarios also run against an authorization
// server alone, and then tokens are issued for the client itself.
func (e *env) optionalResource(ctx context.Context) string {
	if e.mcpURL == nil {
		return e.opts.resource
	}
	resource, err := e.mcpResource(ctx)
	if err != nil {
		return e.opts.resource
	}
	return resource
}

// ccWorker performs client_credentials grants.
type ccWorker struct {
	e        *env
	as       *oauthClient
	resource string
}

func (w *ccWorker) do(ctx context.Context) error {
	_, err := w.as.clientCredentials(ctx, w.e.opts.clientID, w.e.opts.clientSecret, w.e.opts.ccScope, w.resource)
	return err
}

func (w *ccWorker) close(context.Context) {}

func (e *env) newClientCredentialsWorker(ctx context.Context, _ int) (worker, error) {
	as, err := e.authServer(ctx)
	if err != nil {
		return nil, err
	}
	return &ccWorker{e: e, as: as, resource: e.optionalResource(ctx)}, nil
}

// refreshWorker keeps its own refresh-token chain: each request spends the
// current refresh token and keeps the rotated one. A failed refresh may have
// consumed the token (or, seen as reuse, revoked the family), so the worker
// logs in again to start a new chain; the login's time is part of that
// failed request, which is counted as an error anyway.
type refreshWorker struct {
	e        *env
	as       *oauthClient
	resource string
	current  string
}

func (w *refreshWorker) do(ctx context.Context) error {
	tok, err := w.as.refresh(ctx, w.e.opts.publicClient, w.current, w.resource)
	if err != nil {
		if fresh, lerr := w.as.login(ctx, w.e.loginParams(w.resource)); lerr == nil && fresh.RefreshToken != "" {
			w.current = fresh.RefreshToken
		}
		return err
	}
	w.current = tok.RefreshToken
	return nil
}

func (w *refreshWorker) close(context.Context) {}

func (e *env) newRefreshWorker(ctx context.Context, _ int) (worker, error) {
	as, err := e.authServer(ctx)
	if err != nil {
		return nil, err
	}
	resource := e.optionalResource(ctx)
	tok, err := as.login(ctx, e.loginParams(resource))
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		return nil, fmt.Errorf("login gave no refresh_token (does -scope %q include offline_access?)", e.opts.scope)
	}
	return &refreshWorker{e: e, as: as, resource: resource, current: tok.RefreshToken}, nil
}

// invalidTokenWorker sends requests with tokens the server must reject and
// counts anything but a 401 carrying a Bearer challenge as an error.
type invalidTokenWorker struct {
	client   *http.Client
	endpoint string
	tokens   *invalidTokenSource
}

// initializeBody is what a new client sends first; the token check comes
// before the server reads it.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` +
	mcpProtocolVersion + `","capabilities":{},"clientInfo":{"name":"mcp-oauth2-loadtest","version":"1"}}}`

func (w *invalidTokenWorker) do(ctx context.Context) error {
	s := &mcpSession{client: w.client, endpoint: w.endpoint, token: w.tokens.token()}
	resp, err := s.post(ctx, []byte(initializeBody))
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("want 401, got %w", statusError(resp))
	}
	if ch := resp.Header.Get("WWW-Authenticate"); len(ch) < 6 || !strings.EqualFold(ch[:6], "Bearer") {
		return fmt.Errorf("401 without a Bearer WWW-Authenticate challenge (got %q)", ch)
	}
	return nil
}

func (w *invalidTokenWorker) close(context.Context) {}

func (e *env) newInvalidTokenWorker(ctx context.Context) (newWorkerFunc, error) {
	as, err := e.authServer(ctx)
	if err != nil {
		return nil, err
	}
	resource, err := e.mcpResource(ctx)
	if err != nil {
		return nil, err
	}
	tokens, err := newInvalidTokenSource(ctx, e.client, as, resource)
	if err != nil {
		return nil, err
	}
	return func(context.Context, int) (worker, error) {
		return &invalidTokenWorker{client: e.client, endpoint: e.mcpURL.String(), tokens: tokens}, nil
	}, nil
}
