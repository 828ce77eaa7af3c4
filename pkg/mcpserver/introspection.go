package mcpserver

// This file implements token verification by OAuth 2.0 Token Introspection.
// See RFC 7662. With auth.mode = "introspection" every token is checked with
// the authorization server (client_secret_basic, RFC 6749 §2.3.1), so a
// revoked token is refused before it expires; answers are cached for at most
// auth.introspection_cache_ttl (and never past the token's exp), keyed by
// the token's SHA-256.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// introspectionResponse is the RFC 7662 §2.2 response.
type introspectionResponse struct {
	Active bool `json:"active"`
	// TokenType (token_type, §2.2, OPTIONAL) is the kind of token, e.g.
	// "Bearer" or "refresh_token".
	TokenType string          `json:"token_type"`
	Scope     string          `json:"scope"`
	ClientID  string          `json:"client_id"`
	Sub       string          `json:"sub"`
	Aud       json.RawMessage `json:"aud"`
	Iss       string          `json:"iss"`
	Exp       int64           `json:"exp"`
	Nbf       int64           `json:"nbf"`
	JTI       string          `json:"jti"`
	Email     string          `json:"email"`
	Name      string          `json:"name"`
}

// introspectionVerifier asks the authorization server about each token.
type introspectionVerifier struct {
	cfg      AuthConfig
	resource string
	clock    func() time.Time
	client   *http.Client
	logger   *slog.Logger
	endpoint atomic.Pointer[string]
	cache    *verifiedCache
	negative *verifiedCache // remembers inactive tokens for the same TTL

	retryMin, retryMax, fetchTimeout time.Duration
}

func newIntrospectionVerifier(cfg AuthConfig, resource string, clock func() time.Time, client *http.Client, logger *slog.Logger) *introspectionVerifier {
	return &introspectionVerifier{
		cfg: cfg, resource: resource, clock: clock, client: client, logger: logger,
		cache:    newVerifiedCache(verifiedCacheSize, cfg.IntrospectionCacheTTL, clock),
		negative: newVerifiedCache(verifiedCacheSize, cfg.IntrospectionCacheTTL, clock),
		retryMin: time.Second, retryMax: 30 * time.Second, fetchTimeout: 5 * time.Second,
	}
}

// Ready reports whether the introspection endpoint is known.
func (v *introspectionVerifier) Ready() bool { return v.endpoint.Load() != nil }

// Start discovers the introspection endpoint in the background.
func (v *introspectionVerifier) Start(ctx context.Context) {
	go func() {
		delay := v.retryMin
		for {
			meta, err := fetchAuthServerMeta(ctx, v.client, v.cfg.Issuer, v.fetchTimeout)
			if err == nil {
				ep := meta.IntrospectionEndpoint
				if ep == "" {
					ep = strings.TrimSuffix(v.cfg.Issuer, "/") + "/introspect"
				}
				v.endpoint.Store(&ep)
				v.logger.Info("introspection endpoint known; token verification ready", "endpoint", ep)
				return
			}
			v.logger.Warn("authorization server metadata not available yet; retrying", "error", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, v.retryMax)
		}
	}()
}

// Verify introspects the token (or answers from the short cache).
func (v *introspectionVerifier) Verify(ctx context.Context, token string) (*Identity, error) {
	ep := v.endpoint.Load()
	if ep == nil {
		return nil, ErrNotReady
	}
	if id, ok := v.cache.get(token); ok {
		return id, nil
	}
	if _, ok := v.negative.get(token); ok {
		return nil, invalidToken("inactive", "token is not active")
	}
	resp, err := v.introspect(ctx, *ep, token)
	if err != nil {
		v.logger.Warn("introspection failed", "error", err)
		return nil, fmt.Errorf("%w: introspection failed", ErrNotReady)
	}
	id, err := v.identity(resp)
	if err != nil {
		v.negative.put(token, &Identity{ExpiresAt: v.clock().Add(v.cfg.IntrospectionCacheTTL)})
		return nil, err
	}
	v.cache.put(token, id)
	return id, nil
}

func (v *introspectionVerifier) introspect(ctx context.Context, endpoint, token string) (*introspectionResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, v.fetchTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("build introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(v.cfg.IntrospectionClientID), url.QueryEscape(v.cfg.IntrospectionClientSecret))
	res, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspect at %s: %w", endpoint, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read introspection response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection at %s: status %d", endpoint, res.StatusCode)
	}
	var out introspectionResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode introspection response: %w", err)
	}
	return &out, nil
}

// identity applies the same rules as JWT verification to the introspection
// answer: active, an access token, exact issuer, this resource in aud, exp
// required.
func (v *introspectionVerifier) identity(r *introspectionResponse) (*Identity, error) {
	if !r.Active {
		return nil, invalidToken("inactive", "token is not active")
	}
	if !isAccessTokenType(r.TokenType) {
		return nil, invalidToken("wrong_token_type", "not an access token (introspection token_type)")
	}
	if r.Iss != "" && r.Iss != v.cfg.Issuer {
		return nil, invalidToken("wrong_issuer", "wrong issuer")
	}
	aud := audienceList(r.Aud)
	if !slices.Contains(aud, v.resource) {
		return nil, invalidToken("wrong_audience", "token not issued for this resource")
	}
	if r.Sub == "" || r.Exp == 0 {
		return nil, invalidToken("missing_claim", "required claim missing")
	}
	now := v.clock()
	exp := time.Unix(r.Exp, 0)
	if now.After(exp.Add(v.cfg.Leeway)) {
		return nil, invalidToken("expired", "token expired")
	}
	if r.Nbf != 0 && now.Add(v.cfg.Leeway).Before(time.Unix(r.Nbf, 0)) {
		return nil, invalidToken("not_yet_valid", "token not valid yet")
	}
	return (&Identity{
		Subject: r.Sub, Email: r.Email, Name: r.Name, ClientID: r.ClientID, JTI: r.JTI,
		Issuer: r.Iss, Audience: aud, Scopes: parseScope(r.Scope), ExpiresAt: exp,
	}).withTokenInfo(), nil
}

// isAccessTokenType reports whether an introspection answer's token_type
// allows the token as a bearer access token. token_type_hint is only a hint
// (§2.1), so an authorization server also introspects refresh tokens, and
// answers active for them with sub, scope and even aud (pkg/authserver does):
// without this check a refresh token would work as a bearer token here.
// token_type is OPTIONAL (§2.2), so an answer without it is accepted; with
// it, only the bearer access token types are (RFC 6750 "Bearer", the
// RFC 8693 §3 access_token URI, and "access_token"): anything else, refresh
// tokens, ID tokens, and DPoP-bound tokens whose proof this server does not
// check, is refused.
func isAccessTokenType(tokenType string) bool {
	switch strings.ToLower(tokenType) {
	case "", "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		return true
	}
	return false
}

// audienceList reads aud as a string or an array of strings.
func audienceList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}
