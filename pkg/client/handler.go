package client

// This file plugs the project's pieces (code fetchers, token cache,
// refreshing token source, step-up limit) into the MCP Go SDK's
// authorization code handler, which does the discovery, registration, PKCE
// (S256), state and RFC 9207 iss checks, resource indicators (RFC 8707) and
// the code exchange.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// DefaultMaxStepUps bounds re-authorizations for the same insufficient_scope
// challenge: a server that keeps refusing must not make us loop.
const DefaultMaxStepUps = 2

// Registration kinds recorded in the cache.
const (
	RegistrationDynamic       = "dynamic"
	RegistrationPreregistered = "preregistered"
	RegistrationCIMD          = "cimd"
)

// Event is one step of the flow, reported for the demo and probe output.
type Event struct {
	// Step is discovery, registration, authorization, code, token, refresh or step-up.
	Step string
	// Detail is a one-line human description (never a secret).
	Detail string
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// ServerURL is the MCP endpoint.
	ServerURL string
	// RedirectURI is the registered redirect URI.
	RedirectURI string
	// ClientID and ClientSecret are preregistered credentials (optional).
	ClientID, ClientSecret string
	// CIMDURL is a client ID metadata document URL (optional).
	CIMDURL string
	// ClientName is sent in dynamic registration.
	ClientName string
	// Scopes, when set, replaces the discovered scopes at the first login.
	Scopes []string
	// LoginHint is added to the authorization URL.
	LoginHint string
	// Fetcher obtains the authorization code.
	Fetcher auth.AuthorizationCodeFetcher
	// HTTPClient sends the OAuth requests (timeouts, retries).
	HTTPClient *http.Client
	// Cache stores tokens and registrations; required (NewCache("") keeps
	// them in memory).
	Cache *Cache
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Events receives progress (optional).
	Events func(Event)
	// Warn receives warnings (optional).
	Warn func(string)
	// MaxStepUps bounds step-up re-authorizations per scope set.
	MaxStepUps int
}

// Handler is the client's auth.OAuthHandler.
type Handler struct {
	cfg HandlerConfig

	authMu    sync.Mutex // serialises authorizations
	mu        sync.Mutex
	ts        *RefreshingTokenSource
	key       string // cache key of ts
	disc      *Discovery
	stepUps   map[string]int
	lastLogin LoginInfo
	// cacheErr is why the last write of tokens to the cache failed (nil:
	// it succeeded, or none was made).
	cacheErr error
}

// LoginInfo describes the last successful authorization.
type LoginInfo struct {
	Issuer       string   `json:"issuer"`
	Resource     string   `json:"resource"`
	ClientID     string   `json:"client_id"`
	Registration string   `json:"registration"`
	Scopes       []string `json:"requested_scopes"`
}

var _ auth.OAuthHandler = (*Handler)(nil)

// NewHandler returns a handler that starts from the cached token for
// cfg.ServerURL, when there is one.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Fetcher == nil || cfg.HTTPClient == nil || cfg.Cache == nil {
		return nil, errors.New("handler needs a fetcher, an HTTP client and a cache")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxStepUps == 0 {
		cfg.MaxStepUps = DefaultMaxStepUps
	}
	if cfg.Events == nil {
		cfg.Events = func(Event) {}
	}
	if cfg.Warn == nil {
		cfg.Warn = func(string) {}
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "http-oauth2-client"
	}
	h := &Handler{cfg: cfg, stepUps: map[string]int{}}
	if e := cfg.Cache.FindByResource(cfg.ServerURL); e != nil && e.Token != nil && e.Client != nil {
		h.ts = h.tokenSourceFor(e, e.Token.OAuth2Token(), e.Token.ObtainedAt)
		h.key = e.Key()
	}
	return h, nil
}

// TokenSource implements auth.OAuthHandler.
func (h *Handler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ts == nil {
		return nil, nil
	}
	return h.ts, nil
}

// Current returns the token source in use (nil before any login).
func (h *Handler) Current() *RefreshingTokenSource {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ts
}

// Discovery returns the last discovery result (nil before any).
func (h *Handler) Discovery() *Discovery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.disc
}

// LastLogin describes the last authorization done by this handler.
func (h *Handler) LastLogin() LoginInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastLogin
}

// CacheError is why the last attempt to store tokens in the cache failed,
// or nil when it succeeded (or none was made). A failed write is only a
// warning while using the server, but it fails a login, whose purpose is
// to cache the tokens.
func (h *Handler) CacheError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cacheErr
}

func (h *Handler) noteCacheWrite(err error) {
	h.mu.Lock()
	h.cacheErr = err
	h.mu.Unlock()
	if err != nil {
		h.cfg.Warn("token cache: " + err.Error())
	}
}

// Login authorizes now, whether or not a token is cached: it provokes the
// server's challenge and runs the authorization flow on it.
func (h *Handler) Login(ctx context.Context) error {
	ch, err := FetchChallenge(ctx, h.cfg.HTTPClient, h.cfg.ServerURL)
	if err != nil {
		return err
	}
	if ch.Status != http.StatusUnauthorized {
		return fmt.Errorf("MCP server answered HTTP %d to an unauthenticated request: it does not ask for authorization", ch.Status)
	}
	return h.authorize(ctx, ch.Request, ch.Status, ch.Header, ch.Challenges)
}

// Authorize implements auth.OAuthHandler: the transport calls it after a
// 401 or 403 and retries the request once when it returns nil.
func (h *Handler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	header := resp.Header.Clone()
	status := resp.StatusCode
	drain(resp)
	chs, err := oauthex.ParseWWWAuthenticate(header.Values("WWW-Authenticate"))
	if err != nil {
		return fmt.Errorf("malformed WWW-Authenticate header: %w", err)
	}
	ch := &Challenge{Status: status, Challenges: chs}
	// One authorization at a time: concurrent requests that all got a 401
	// (or 403) must not each start a login or a refresh.
	h.authMu.Lock()
	defer h.authMu.Unlock()
	if h.replacedSince(req) {
		return nil // another caller refreshed or logged in meanwhile: retry with that
	}
	switch status {
	case http.StatusUnauthorized:
		if h.tryRefresh(ctx, req) {
			return nil
		}
	case http.StatusForbidden:
		if e := ch.Param("error"); e != "insufficient_scope" {
			return fmt.Errorf("MCP server refused the request: HTTP 403 %s", e)
		}
		if err := h.countStepUp(ch.Param("scope")); err != nil {
			return err
		}
		h.cfg.Events(Event{"step-up", "server needs scope " + quoteOrNone(ch.Param("scope")) + " (403 insufficient_scope): authorizing again"})
	}
	return h.authorize(ctx, req, status, header, chs)
}

// replacedSince reports whether the token held now is valid and differs
// from the one req carried.
func (h *Handler) replacedSince(req *http.Request) bool {
	ts := h.Current()
	if ts == nil {
		return false
	}
	cur := ts.Current()
	sent := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	return cur != nil && cur.AccessToken != "" && sent != cur.AccessToken && ts.Valid()
}

// tryRefresh handles a 401 for a token we believed valid: one refresh
// (shared with concurrent callers) before a full authorization.
func (h *Handler) tryRefresh(ctx context.Context, req *http.Request) bool {
	ts := h.Current()
	if ts == nil {
		return false
	}
	cur := ts.Current()
	sent := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	if cur == nil || cur.RefreshToken == "" || sent == "" || sent != cur.AccessToken {
		return false
	}
	if _, err := ts.ForceRefresh(ctx, sent); err != nil {
		h.cfg.Warn("refresh after 401 failed: " + err.Error())
		return false
	}
	h.cfg.Events(Event{"refresh", "access token rejected (401): refreshed it"})
	return true
}

func (h *Handler) countStepUp(scope string) error {
	fields := strings.Fields(scope)
	sort.Strings(fields)
	k := strings.Join(fields, " ")
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stepUps[k]++
	if h.stepUps[k] > h.cfg.MaxStepUps {
		return fmt.Errorf("step-up authorization: server still answers insufficient_scope for %s after %d re-authorizations", quoteOrNone(scope), h.cfg.MaxStepUps)
	}
	return nil
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return "\"" + s + "\""
}

// registration is the client identity chosen for one authorization.
type registration struct {
	kind     string // RegistrationDynamic (new), RegistrationPreregistered, RegistrationCIMD
	cached   *ClientRecord
	fallback bool // CIMD with DCR as fallback
}

// authorize runs the SDK flow once, and once more with a fresh dynamic
// registration if the authorization server no longer knows a cached one.
func (h *Handler) authorize(ctx context.Context, req *http.Request, status int, header http.Header, chs []oauthex.Challenge) error {
	d, err := Discover(ctx, h.cfg.HTTPClient, h.cfg.ServerURL, &Challenge{Status: status, Challenges: chs})
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	h.mu.Lock()
	h.disc = d
	h.mu.Unlock()
	key := CacheKey(d.Resource(), d.Issuer())
	reg := h.chooseRegistration(key, d)
	err = h.runSDK(ctx, req, status, header, d, reg)
	if err != nil && reg.cached != nil && isInvalidClient(err) {
		h.cfg.Warn("authorization server no longer knows client " + reg.cached.ClientID + ": registering again")
		h.forgetClient(key)
		err = h.runSDK(ctx, req, status, header, d, registration{kind: RegistrationDynamic})
	}
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	return nil
}

func (h *Handler) chooseRegistration(key string, d *Discovery) registration {
	if h.cfg.ClientID != "" {
		return registration{kind: RegistrationPreregistered}
	}
	if h.cfg.CIMDURL != "" && d.ASM.ClientIDMetadataDocumentSupported {
		return registration{kind: RegistrationCIMD, fallback: true}
	}
	ts := h.Current()
	if ts != nil && ts.ClientRejected() {
		h.forgetClient(key)
		return registration{kind: RegistrationDynamic}
	}
	if e := h.cfg.Cache.Get(key); e != nil && e.Client != nil && e.Client.Registration == RegistrationDynamic &&
		e.Client.RedirectURI == h.cfg.RedirectURI {
		return registration{kind: RegistrationDynamic, cached: e.Client}
	}
	return registration{kind: RegistrationDynamic}
}

// rememberClient caches a new dynamic registration as soon as it is known,
// so a login that fails later (a denied consent, a token endpoint error)
// does not make the next attempt register yet another client. We register
// as a public client ("none"); if the AS gave us a secret anyway, the
// reused registration fails with invalid_client and a new one is made.
func (h *Handler) rememberClient(d *Discovery, clientID string) {
	rec := &ClientRecord{ClientID: clientID, Registration: RegistrationDynamic,
		AuthStyle: int(oauth2.AuthStyleInParams), RedirectURI: h.cfg.RedirectURI, RegisteredAt: h.cfg.Now().UTC()}
	err := h.cfg.Cache.Update(CacheKey(d.Resource(), d.Issuer()), func(e *Entry) *Entry {
		if e == nil {
			e = &Entry{Resource: d.Resource(), Issuer: d.Issuer(), ServerURL: h.cfg.ServerURL}
		}
		e.TokenEndpoint, e.RevocationEndpoint = d.ASM.TokenEndpoint, d.ASM.RevocationEndpoint
		e.Client, e.Token = rec, nil // tokens of another client are useless with this one
		return e
	})
	if err != nil {
		h.cfg.Warn("token cache: " + err.Error())
	}
}

func (h *Handler) forgetClient(key string) {
	err := h.cfg.Cache.Update(key, func(e *Entry) *Entry {
		if e != nil {
			e.Client = nil
			e.Token = nil
		}
		return e
	})
	if err != nil {
		h.cfg.Warn("token cache: " + err.Error())
	}
}

func (h *Handler) runSDK(ctx context.Context, req *http.Request, status int, header http.Header, d *Discovery, reg registration) error {
	var requested []string
	cfg := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL:              h.cfg.RedirectURI,
		AuthorizationCodeFetcher: h.fetcher(reg, d),
		Client:                   h.cfg.HTTPClient,
		RequestRefreshToken:      true,
		ScopeFilter: func(discovered []string) []string {
			base := discovered
			if status != http.StatusForbidden && len(h.cfg.Scopes) > 0 {
				base = h.cfg.Scopes
			}
			requested = unionScopes(h.grantedScopes(d), base)
			return requested
		},
	}
	var preregistered *oauthex.ClientCredentials
	switch {
	case reg.kind == RegistrationPreregistered:
		preregistered = credentials(h.cfg.ClientID, h.cfg.ClientSecret)
		h.cfg.Events(Event{"registration", "preregistered client " + h.cfg.ClientID})
	case reg.cached != nil:
		preregistered = credentials(reg.cached.ClientID, reg.cached.ClientSecret)
		h.cfg.Events(Event{"registration", "reusing dynamically registered client " + reg.cached.ClientID + " (from the token cache)"})
	case reg.kind == RegistrationCIMD:
		cfg.ClientIDMetadataDocumentConfig = &auth.ClientIDMetadataDocumentConfig{URL: h.cfg.CIMDURL}
	}
	cfg.PreregisteredClient = preregistered
	if preregistered == nil {
		cfg.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{h.cfg.RedirectURI},
				ClientName:              h.cfg.ClientName,
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
			},
		}
	}
	cfg.NewTokenSource = func(_ context.Context, oc *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
		rec := h.clientRecord(oc, reg, preregistered)
		e := &Entry{Resource: d.Resource(), Issuer: d.Issuer(), ServerURL: h.cfg.ServerURL,
			TokenEndpoint: d.ASM.TokenEndpoint, RevocationEndpoint: d.ASM.RevocationEndpoint, Client: rec}
		ts := h.tokenSourceFor(e, tok, h.cfg.Now())
		h.persist(e, tok)
		h.mu.Lock()
		h.ts, h.key = ts, e.Key()
		h.lastLogin = LoginInfo{Issuer: d.Issuer(), Resource: d.Resource(), ClientID: rec.ClientID,
			Registration: rec.Registration, Scopes: requested}
		h.mu.Unlock()
		return ts, nil
	}
	sdk, err := auth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		return fmt.Errorf("configure OAuth handler: %w", err)
	}
	// The SDK reads only the status and headers of the response; the body
	// was already consumed.
	resp := &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(""))}
	// The code exchange goes to this token endpoint: a 5xx or 429 answer
	// there is retried (RFC 6749 §5.2: an error response issues no token;
	// if the server consumed the code anyway, the retry gets invalid_grant
	// and the login fails as it would have without it).
	return sdk.Authorize(WithTokenEndpoint(ctx, d.ASM.TokenEndpoint), req, resp)
}

func credentials(id, secret string) *oauthex.ClientCredentials {
	c := &oauthex.ClientCredentials{ClientID: id}
	if secret != "" {
		c.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: secret}
	}
	return c
}

func (h *Handler) clientRecord(oc *oauth2.Config, reg registration, pre *oauthex.ClientCredentials) *ClientRecord {
	rec := &ClientRecord{ClientID: oc.ClientID, ClientSecret: oc.ClientSecret,
		AuthStyle: int(oc.Endpoint.AuthStyle), RedirectURI: h.cfg.RedirectURI}
	switch {
	case reg.cached != nil:
		rec.Registration, rec.RegisteredAt = RegistrationDynamic, reg.cached.RegisteredAt
	case pre != nil:
		rec.Registration = RegistrationPreregistered
	case oc.ClientID == h.cfg.CIMDURL && h.cfg.CIMDURL != "":
		rec.Registration = RegistrationCIMD
	default:
		rec.Registration, rec.RegisteredAt = RegistrationDynamic, h.cfg.Now().UTC()
	}
	return rec
}

// grantedScopes are the scopes of the token held for this server and
// issuer: kept in a step-up so earlier grants are not lost (SEP-2350).
func (h *Handler) grantedScopes(d *Discovery) []string {
	h.mu.Lock()
	ts, key := h.ts, h.key
	h.mu.Unlock()
	if ts == nil || key != CacheKey(d.Resource(), d.Issuer()) {
		return nil
	}
	tok := ts.Current()
	if tok == nil {
		return nil
	}
	s, _ := tok.Extra("scope").(string)
	return strings.Fields(s)
}

func unionScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// tokenSourceFor builds the refreshing source for a cache entry.
func (h *Handler) tokenSourceFor(e *Entry, tok *oauth2.Token, obtained time.Time) *RefreshingTokenSource {
	oc := &oauth2.Config{ClientID: e.Client.ClientID, ClientSecret: e.Client.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: e.TokenEndpoint, AuthStyle: oauth2.AuthStyle(e.Client.AuthStyle)}}
	entry := *e
	return NewRefreshingTokenSource(oc, h.cfg.HTTPClient, tok, TokenSourceOptions{
		Now:        h.cfg.Now,
		ObtainedAt: obtained,
		Persist:    func(t *oauth2.Token) { h.persist(&entry, t) },
		Shared:     &cacheRefreshLock{h: h, entry: entry},
	})
}

// persist writes the entry with tok; a failed write is a warning, not a
// failed login.
func (h *Handler) persist(e *Entry, tok *oauth2.Token) {
	h.noteCacheWrite(h.cfg.Cache.Update(e.Key(), func(cur *Entry) *Entry {
		return withToken(e, cur, tok, h.cfg.Now())
	}))
}

// withToken is e holding tok, received at obtained; the scope of cur (the
// entry stored now) is kept when the token response did not repeat it.
func withToken(e, cur *Entry, tok *oauth2.Token, obtained time.Time) *Entry {
	next := *e
	prevScope := ""
	if cur != nil && cur.Token != nil {
		prevScope = cur.Token.Scope
	}
	next.Token = TokenRecordFrom(tok, prevScope)
	next.Token.ObtainedAt = obtained.UTC()
	return &next
}

// cacheRefreshLock is the RefreshLock of one cache entry: the token cache's
// cross-process lock, held across the whole refresh, so that runs of the
// CLI sharing the cache refresh a rotated token once between them.
type cacheRefreshLock struct {
	h     *Handler
	entry Entry
	// wait bounds the wait for the lock (0: refreshLockWait).
	wait time.Duration
}

// WithRefreshLock implements RefreshLock.
func (l *cacheRefreshLock) WithRefreshLock(fn func(*StoredToken) (*StoredToken, error)) error {
	wait := l.wait
	if wait == 0 {
		wait = l.h.refreshLockWait()
	}
	called := false
	var fnErr error
	err := l.h.cfg.Cache.Exclusive(l.entry.Key(), wait, func(cur *Entry) (*Entry, error) {
		called = true
		next, err := fn(storedToken(cur, l.entry.Client))
		if err != nil || next == nil {
			fnErr = err
			return nil, err
		}
		return withToken(&l.entry, cur, next.Token, next.ObtainedAt), nil
	})
	switch {
	case called && fnErr != nil:
		return fnErr
	case called:
		l.h.noteCacheWrite(err)
		return nil
	case errors.Is(err, ErrCacheBusy):
		// Refreshing anyway could present a token the lock holder is
		// rotating right now.
		return fmt.Errorf("refresh: %w", err)
	}
	// The cache cannot be locked at all (e.g. its directory cannot be
	// created): no other process can share it either, so refresh alone
	// and keep the tokens in memory.
	l.h.noteCacheWrite(err)
	_, err = fn(nil)
	return err
}

// storedToken is the token of cur when it was issued to client.
func storedToken(cur *Entry, client *ClientRecord) *StoredToken {
	if cur == nil || cur.Token == nil || cur.Client == nil || client == nil || cur.Client.ClientID != client.ClientID {
		return nil
	}
	return &StoredToken{Token: cur.Token.OAuth2Token(), ObtainedAt: cur.Token.ObtainedAt}
}

// refreshLockWait bounds the wait for another process's refresh: at least
// the lock's usual wait, and long enough for a refresh with its retries
// (bounded by the HTTP client's timeout).
func (h *Handler) refreshLockWait() time.Duration {
	return max(lockWait, h.cfg.HTTPClient.Timeout+5*time.Second)
}

// fetcher wraps the configured fetcher: adds login_hint and reports steps.
func (h *Handler) fetcher(reg registration, d *Discovery) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		authURL, err := withLoginHint(args.URL, h.cfg.LoginHint)
		if err != nil {
			return nil, err
		}
		if id := clientIDOf(authURL); reg.kind != RegistrationPreregistered && reg.cached == nil && id != "" {
			if id == h.cfg.CIMDURL {
				h.cfg.Events(Event{"registration", "client ID metadata document: client_id " + id})
			} else {
				h.cfg.Events(Event{"registration", "registered dynamically (RFC 7591) at " + d.ASM.RegistrationEndpoint + ": client_id " + id})
				h.rememberClient(d, id)
			}
		}
		h.cfg.Events(Event{"authorization", describeAuthURL(authURL)})
		res, err := h.cfg.Fetcher(ctx, &auth.AuthorizationArgs{URL: authURL})
		if err != nil {
			return nil, fmt.Errorf("get authorization code: %w", err)
		}
		iss := res.Iss
		if iss == "" {
			iss = "(none)"
		}
		h.cfg.Events(Event{"code", "authorization code received (iss " + iss + "); exchanging it with the PKCE verifier"})
		return res, nil
	}
}
