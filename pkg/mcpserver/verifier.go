package mcpserver

// This file verifies JWT access tokens as a resource server must (RFC 9068
// profile, RFC 7519 §7.2, RFC 8707 audience, MCP authorization "Token
// Handling"): signature against the authorization server's JWKS (RFC 7517),
// found through its metadata's jwks_uri (RFC 8414) unless configured, with
// an algorithm allowlist, the header typ "at+jwt" (RFC 9068 §4, RFC 8725
// §3.11; auth.require_at_jwt_typ), exact issuer, this server's resource as
// audience, and exp/nbf/iat with a small leeway.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/scope"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Identity is what a verified access token says about its caller. It never
// holds the token itself.
type Identity struct {
	Subject   string    `json:"sub"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	JTI       string    `json:"jti,omitempty"`
	Issuer    string    `json:"iss"`
	Audience  []string  `json:"aud"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"exp"`

	// tokenInfo is this identity as the SDK sees it, built once at
	// verification (withTokenInfo); nil for an Identity built elsewhere.
	tokenInfo *auth.TokenInfo
}

// ErrNotReady means the verifier has not yet loaded what it needs (the JWKS,
// or the introspection endpoint): the caller should answer 503.
var ErrNotReady = errors.New("authorization server keys not loaded yet")

// ErrInvalidToken wraps every reason a token is refused (RFC 6750 §3.1
// invalid_token).
var ErrInvalidToken = errors.New("invalid token")

// tokenVerifier turns a bearer token into the caller's Identity.
type tokenVerifier interface {
	// Verify returns the Identity, or an error wrapping ErrInvalidToken or
	// ErrNotReady.
	Verify(ctx context.Context, token string) (*Identity, error)
	// Ready reports whether Verify can succeed at all.
	Ready() bool
	// Start begins background loading and returns at once.
	Start(ctx context.Context)
}

// accessClaims are the claims of this project's access tokens.
type accessClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
	// Scp is where Okta (an array) and Microsoft Entra ID (a string) put
	// scopes; read only when the token has no scope (RFC 9068 §2.2.3).
	Scp      json.RawMessage `json:"scp"`
	ClientID string          `json:"client_id"`
	Email    string          `json:"email"`
	Name     string          `json:"name"`
}

// jwtVerifier verifies JWT access tokens locally against a cached JWKS.
type jwtVerifier struct {
	cfg      AuthConfig
	resource string
	clock    func() time.Time
	client   *http.Client // metadata requests
	logger   *slog.Logger
	parser   *jwt.Parser
	// jwksClient fetches the JWKS; its transport may count fetches.
	jwksClient *http.Client
	cache      *verifiedCache

	keys atomic.Pointer[keyfunc.Keyfunc]
	// refresher fetches the JWKS again for an unknown kid; nil means never
	// (keys given by hand, as in the fuzz test).
	refresher atomic.Pointer[kidRefresher]
	// retryMin and retryMax bound the backoff while the authorization server
	// is unreachable at start.
	retryMin, retryMax time.Duration
	// fetchTimeout bounds every metadata and JWKS request.
	fetchTimeout time.Duration
}

func newJWTVerifier(cfg AuthConfig, resource string, clock func() time.Time, client *http.Client, logger *slog.Logger) *jwtVerifier {
	parser := jwt.NewParser(
		// The allowlist is checked before any key is looked up, so "none"
		// and HS256 (which would use the public key bytes as an HMAC secret)
		// never reach signature verification.
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		// RFC 8707: the token must name this resource, so a token issued for
		// another server cannot be replayed here (no token passthrough).
		jwt.WithAudience(resource),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(clock),
	)
	return &jwtVerifier{
		cfg: cfg, resource: resource, clock: clock, client: client, jwksClient: client, logger: logger,
		parser: parser, cache: newJWTCache(verifiedCacheSize, verifiedCacheTTL, clock),
		retryMin: time.Second, retryMax: 30 * time.Second, fetchTimeout: 5 * time.Second,
	}
}

// Ready reports whether the JWKS has been loaded once.
func (v *jwtVerifier) Ready() bool { return v.keys.Load() != nil }

// Start loads the JWKS in the background, retrying with backoff while the
// authorization server is down, so the server can start before it.
func (v *jwtVerifier) Start(ctx context.Context) {
	go v.loadLoop(ctx)
}

func (v *jwtVerifier) loadLoop(ctx context.Context) {
	delay := v.retryMin
	for {
		err := v.load(ctx)
		if err == nil {
			v.logger.Info("jwks loaded; token verification ready")
			return
		}
		v.logger.Warn("authorization server keys not available yet; retrying", "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, v.retryMax)
	}
}

// load discovers the JWKS URL and fetches it once. On success it installs a
// keyfunc whose storage refreshes on auth.jwks_refresh_interval and, for an
// unknown kid, at most once per auth.unknown_kid_rate_limit (kidRefresher). A
// failed refresh keeps the cached keys, so an outage later does not stop
// verification.
func (v *jwtVerifier) load(ctx context.Context) error {
	jwksURL, err := v.jwksURL(ctx)
	if err != nil {
		return err
	}
	// One memory store shared by the periodic refresh and the unknown-kid
	// refresh: each replaces its whole content on success only.
	keys := jwkset.NewMemoryStorage()
	storageCtx, cancel := context.WithCancel(ctx)
	storage, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
		Client:          v.jwksClient,
		Ctx:             storageCtx,
		HTTPTimeout:     v.fetchTimeout,
		RefreshInterval: v.cfg.JWKSRefreshInterval,
		Storage:         keys,
		RefreshErrorHandler: func(_ context.Context, err error) {
			v.logger.Warn("jwks refresh failed; keeping cached keys", "url", jwksURL, "error", err)
		},
	})
	if err != nil {
		cancel() // stops the refresh goroutine of the failed attempt
		return fmt.Errorf("fetch jwks %s: %w", jwksURL, err)
	}
	// No RefreshUnknownKID here: jwkset would fetch under the request's
	// deadline (see jwks_refresh.go). The keyfunc only reads the store.
	kf, err := keyfunc.New(keyfunc.Options{Ctx: storageCtx, Storage: storage})
	if err != nil {
		cancel()
		return fmt.Errorf("keyfunc: %w", err)
	}
	fetch := func(ctx context.Context) error { return v.fetchJWKSInto(ctx, jwksURL, keys) }
	v.refresher.Store(newKIDRefresher(storageCtx, fetch, v.cfg.UnknownKIDRateLimit, v.clock, v.logger))
	v.keys.Store(&kf)
	context.AfterFunc(ctx, cancel)
	return nil
}

// fetchJWKSInto fetches the JWKS once, bounded by v.fetchTimeout, and on
// success replaces the content of keys. A storage built without a refresh
// interval does exactly one fetch, so jwkset still does the fetching,
// decoding and key validation.
func (v *jwtVerifier) fetchJWKSInto(ctx context.Context, jwksURL string, keys jwkset.Storage) error {
	_, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
		Client:      v.jwksClient,
		Ctx:         ctx,
		HTTPTimeout: v.fetchTimeout,
		Storage:     keys,
	})
	if err != nil {
		return fmt.Errorf("fetch jwks %s: %w", jwksURL, err)
	}
	return nil
}

// jwksURL is auth.jwks_url, or jwks_uri from the issuer's RFC 8414 metadata
// (whose issuer must equal auth.issuer exactly, §3.3).
func (v *jwtVerifier) jwksURL(ctx context.Context) (string, error) {
	if v.cfg.JWKSURL != "" {
		return v.cfg.JWKSURL, nil
	}
	meta, err := fetchAuthServerMeta(ctx, v.client, v.cfg.Issuer, v.fetchTimeout)
	if err != nil {
		return "", err
	}
	if meta.JWKSURI == "" {
		return "", fmt.Errorf("authorization server metadata of %s has no jwks_uri", v.cfg.Issuer)
	}
	return meta.JWKSURI, nil
}

// fetchAuthServerMeta reads RFC 8414 metadata for issuer.
func fetchAuthServerMeta(ctx context.Context, client *http.Client, issuer string, timeout time.Duration) (*oauthex.AuthServerMeta, error) {
	metaURL, err := authServerMetadataURL(issuer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	once := *client // the introspection verifier keeps its connections for introspection
	once.Transport = closeAfterUse{base: client.Transport}
	meta, err := oauthex.GetAuthServerMeta(ctx, metaURL, issuer, &once)
	if err != nil {
		return nil, fmt.Errorf("authorization server metadata %s: %w", metaURL, err)
	}
	if meta == nil {
		return nil, fmt.Errorf("authorization server metadata %s: not found", metaURL)
	}
	return meta, nil
}

// authServerMetadataURL builds the RFC 8414 §3.1 well-known URL: the
// well-known segment goes between the host and the issuer's path.
func authServerMetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("parse issuer %q: %w", issuer, err)
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// Verify checks the token and returns the caller's identity.
func (v *jwtVerifier) Verify(ctx context.Context, token string) (*Identity, error) {
	kf := v.keys.Load()
	if kf == nil {
		return nil, ErrNotReady
	}
	if id, ok := v.cache.get(token); ok {
		return id, nil
	}
	var claims accessClaims
	parsed, err := v.parser.ParseWithClaims(token, &claims, v.keyfunc(ctx, *kf))
	if err != nil {
		return nil, describeJWTError(err)
	}
	if !parsed.Valid {
		return nil, invalidToken("invalid", "token not valid")
	}
	id, err := identityFromClaims(&claims)
	if err != nil {
		return nil, err
	}
	v.cache.put(token, id)
	return id, nil
}

// errNotAccessTokenTyp refuses a JWT whose header typ does not say it is an
// access token.
var errNotAccessTokenTyp = errors.New(`token header typ is not "at+jwt"`)

// isAccessTokenTyp reports whether a JWT header types the token as an
// RFC 9068 access token. RFC 9068 §4 lets a resource server accept only
// "at+jwt" or "application/at+jwt"; media type names are case-insensitive
// (RFC 7515 §4.1.9, RFC 8725 §3.11), so "AT+JWT" is the same type. A
// missing typ is refused: it is what an ID token or any other JWT signed by
// the same key may carry, and explicit typing exists to tell them apart.
func isAccessTokenTyp(header map[string]any) bool {
	typ, ok := header["typ"].(string)
	return ok && (strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt"))
}

// keyfunc looks the verification key up by kid. Keys come only from the
// configured JWKS: jku, x5u and embedded jwk headers are ignored, because
// honouring them would let the token choose its own key. The typ check comes
// first, so a JWT of another kind (an ID token signed by the same key: same
// iss, and aud can be made to match) is refused without a key lookup and
// cannot trigger a JWKS refresh.
func (v *jwtVerifier) keyfunc(ctx context.Context, kf keyfunc.Keyfunc) jwt.Keyfunc {
	lookup := kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		if v.cfg.RequireAtJWTTyp && !isAccessTokenTyp(t.Header) {
			return nil, errNotAccessTokenTyp
		}
		kid, ok := t.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, errors.New("token header has no kid")
		}
		key, err := lookup(t)
		if err == nil || !errors.Is(err, jwkset.ErrKeyNotFound) {
			return key, err
		}
		r := v.refresher.Load()
		if r == nil {
			return nil, err
		}
		// Perhaps a rotation: let a refresh run (rate-limited, in the
		// background) and look again, whether or not it was this
		// request that started it.
		r.await(ctx)
		return lookup(t)
	}
}

// identityFromClaims checks the claims the parser does not and builds the
// Identity.
func identityFromClaims(c *accessClaims) (*Identity, error) {
	if c.Subject == "" {
		return nil, invalidToken("missing_claim", "token has no sub")
	}
	if c.ExpiresAt == nil {
		return nil, invalidToken("missing_claim", "token has no exp")
	}
	scopes, err := claimScopes(c)
	if err != nil {
		return nil, err
	}
	return (&Identity{
		Subject: c.Subject, Email: c.Email, Name: c.Name, ClientID: c.ClientID, JTI: c.ID,
		Issuer: c.Issuer, Audience: c.Audience, Scopes: scopes, ExpiresAt: c.ExpiresAt.Time,
	}).withTokenInfo(), nil
}

// claimScopes reads the token's scopes: the space-separated scope claim of
// RFC 9068 §2.2.3 when it is there, else scp as providers that do not
// follow it write it, a space-separated string or an array of scope
// strings. A scp of another shape, or an array element that is not one
// scope token (RFC 6749 §3.3), refuses the token rather than guessing.
func claimScopes(c *accessClaims) ([]string, error) {
	if c.Scope != "" || len(c.Scp) == 0 || string(c.Scp) == "null" {
		return parseScope(c.Scope), nil
	}
	var s string
	if err := json.Unmarshal(c.Scp, &s); err == nil {
		return parseScope(s), nil
	}
	var list []string
	if err := json.Unmarshal(c.Scp, &list); err != nil {
		return nil, invalidToken("malformed_claim", "scp is neither a string nor an array of strings")
	}
	for _, v := range list {
		if !scope.ValidToken(v) {
			return nil, invalidToken("malformed_claim", "scp holds a value that is not a scope")
		}
	}
	return list, nil
}

// tokenError is a refused token: reason is a fixed label (for metrics and
// logs), desc a short text safe for error_description.
type tokenError struct {
	reason, desc string
}

func (e *tokenError) Error() string { return ErrInvalidToken.Error() + ": " + e.desc }

func (e *tokenError) Unwrap() error { return ErrInvalidToken }

func invalidToken(reason, desc string) error { return &tokenError{reason: reason, desc: desc} }

// describeJWTError turns a golang-jwt error into a refusal whose text names
// the failed check, never key material.
func describeJWTError(err error) error {
	switch {
	case errors.Is(err, errNotAccessTokenTyp):
		// Before ErrTokenUnverifiable, which golang-jwt also wraps around
		// every keyfunc error.
		return invalidToken("wrong_typ", "not an access token (typ must be at+jwt)")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalidToken("malformed", "malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalidToken("bad_signature", "bad signature or disallowed algorithm")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalidToken("unknown_kid", "no usable verification key")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalidToken("missing_claim", "required claim missing")
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalidToken("expired", "token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalidToken("not_yet_valid", "token not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalidToken("not_yet_valid", "token issued in the future")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalidToken("wrong_issuer", "wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalidToken("wrong_audience", "token not issued for this resource")
	default:
		return invalidToken("invalid", "token rejected")
	}
}
