package client

// This file implements the refreshing token source (RFC 6749 §6): refresh
// before expiry, one shared refresh for concurrent callers (in this process,
// and with a RefreshLock across processes), rotated tokens persisted.

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// DefaultRefreshSkew is how long before expiry a token is refreshed, so a
// token does not expire between the check and its use at the server.
const DefaultRefreshSkew = 30 * time.Second

// RefreshingTokenSource hands out the current access token and refreshes it
// shortly before it expires. Concurrent callers that find the token stale
// share a single refresh request (a refresh-token grant per caller would,
// with rotation, invalidate all but one of them). Every new token is passed
// to Persist.
//
// When the refresh fails with invalid_grant (the refresh token expired, was
// revoked or was already rotated), or when there is no refresh token, Token
// returns an *oauth2.RetrieveError with ErrorCode "invalid_grant": the SDK's
// transport then sends the request without a token, gets a 401 and calls
// the OAuth handler, which starts a new authorization.
type RefreshingTokenSource struct {
	cfg    *oauth2.Config
	client *http.Client
	// Persist stores a new token (nil: not stored).
	persist func(*oauth2.Token)
	shared  RefreshLock
	now     func() time.Time
	skew    time.Duration

	mu       sync.Mutex
	tok      *oauth2.Token
	obtained time.Time // when tok was received (zero: unknown, e.g. from the cache)
	inflight *refreshCall
	refresh  int
	// clientRejected is set when the token endpoint answered invalid_client:
	// the authorization server forgot a dynamically registered client.
	clientRejected bool
}

type refreshCall struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// StoredToken is a token as stored where other processes can see it.
type StoredToken struct {
	Token *oauth2.Token
	// ObtainedAt is when the token was received (zero: unknown).
	ObtainedAt time.Time
}

// RefreshLock coordinates the refreshes of token sources in different
// processes that share stored tokens (several runs of the CLI over one
// token cache). With refresh-token rotation, two processes refreshing the
// same refresh token means the second presents a token that was already
// rotated, which the authorization server must treat as a stolen token and
// answer by revoking the whole family (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1).
type RefreshLock interface {
	// WithRefreshLock holds a lock shared with the other processes while
	// it calls fn with the token stored now (nil: none, or the store is
	// unusable), and stores the token fn returns (nil: nothing new) before
	// releasing it. It returns fn's error, or why the lock could not be
	// held; a failure to store fn's token is reported by the
	// implementation, not returned (the token is good all the same).
	WithRefreshLock(fn func(stored *StoredToken) (*StoredToken, error)) error
}

// TokenSourceOptions are the optional parts of a RefreshingTokenSource.
type TokenSourceOptions struct {
	// Persist is called with every new token, except the refreshed ones
	// when Shared is set (Shared stores those).
	Persist func(*oauth2.Token)
	// Shared, when set, runs every refresh under a lock shared with other
	// processes, and adopts a token another process already refreshed.
	Shared RefreshLock
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Skew is how early to refresh; DefaultRefreshSkew when zero.
	Skew time.Duration
	// ObtainedAt is when tok was received (zero: unknown), so its lifetime
	// is known.
	ObtainedAt time.Time
}

// NewRefreshingTokenSource returns a token source starting from tok, which
// refreshes through cfg's token endpoint with client.
func NewRefreshingTokenSource(cfg *oauth2.Config, client *http.Client, tok *oauth2.Token, opts TokenSourceOptions) *RefreshingTokenSource {
	s := &RefreshingTokenSource{cfg: cfg, client: client, tok: tok, persist: opts.Persist,
		shared: opts.Shared, now: opts.Now, skew: opts.Skew}
	if s.now == nil {
		s.now = time.Now
	}
	if s.skew == 0 {
		s.skew = DefaultRefreshSkew
	}
	s.obtained = opts.ObtainedAt
	return s
}

// errNeedAuthorization tells the SDK transport to go without a token and
// let the 401 start a new authorization.
func errNeedAuthorization(desc string) error {
	return &oauth2.RetrieveError{ErrorCode: "invalid_grant", ErrorDescription: desc}
}

// Token implements oauth2.TokenSource.
func (s *RefreshingTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	if s.freshLocked() {
		t := s.tok
		s.mu.Unlock()
		return t, nil
	}
	return s.refreshLocked(context.Background())
}

// Valid reports whether the token held now is usable without a refresh.
func (s *RefreshingTokenSource) Valid() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.freshLocked()
}

// Current returns the token held now, without refreshing.
func (s *RefreshingTokenSource) Current() *oauth2.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

// ClientRejected reports whether a refresh failed with invalid_client.
func (s *RefreshingTokenSource) ClientRejected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientRejected
}

// Config is the OAuth client configuration the source refreshes with.
func (s *RefreshingTokenSource) Config() *oauth2.Config { return s.cfg }

// Refreshes counts the refresh requests this source has sent.
func (s *RefreshingTokenSource) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

// ForceRefresh refreshes now, unless the token is no longer staleAccess (a
// concurrent caller already replaced it): used when the server rejected a
// token that looked valid, and by the demo. An empty staleAccess always
// refreshes.
func (s *RefreshingTokenSource) ForceRefresh(ctx context.Context, staleAccess string) (*oauth2.Token, error) {
	s.mu.Lock()
	if staleAccess != "" && s.tok != nil && s.tok.AccessToken != staleAccess && s.freshLocked() {
		t := s.tok
		s.mu.Unlock()
		return t, nil
	}
	return s.refreshLocked(ctx)
}

func (s *RefreshingTokenSource) freshLocked() bool {
	return s.isFresh(s.tok, s.obtained)
}

// isFresh reports whether tok, received at obtained, is usable without a
// refresh. It reads only fields set at construction.
func (s *RefreshingTokenSource) isFresh(tok *oauth2.Token, obtained time.Time) bool {
	if tok == nil || tok.AccessToken == "" {
		return false
	}
	return tok.Expiry.IsZero() || s.now().Add(s.skewFor(tok, obtained)).Before(tok.Expiry)
}

// skewFor is the refresh margin: at most half the token's lifetime, so a
// server issuing very short-lived tokens does not get a refresh per request.
func (s *RefreshingTokenSource) skewFor(tok *oauth2.Token, obtained time.Time) time.Duration {
	if obtained.IsZero() {
		return s.skew
	}
	return min(s.skew, tok.Expiry.Sub(obtained)/2)
}

// refreshLocked is called with s.mu held and releases it. The first caller
// sends the refresh; the others wait for its result.
func (s *RefreshingTokenSource) refreshLocked(ctx context.Context) (*oauth2.Token, error) {
	if c := s.inflight; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.tok, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.tok == nil || s.tok.RefreshToken == "" {
		s.mu.Unlock()
		return nil, errNeedAuthorization("access token expired and no refresh token")
	}
	c := &refreshCall{done: make(chan struct{})}
	s.inflight = c
	old := s.tok
	s.mu.Unlock()

	tok, obtained, err := s.obtain(ctx, old)

	s.mu.Lock()
	s.inflight = nil
	if err == nil {
		s.tok, s.obtained = tok, obtained
	} else if isInvalidGrant(err) || isInvalidClient(err) {
		// The refresh token (or the client) is dead: drop the refresh
		// token so nobody retries it, and let the transport's 401 start a
		// new authorization.
		s.clientRejected = isInvalidClient(err)
		s.tok = &oauth2.Token{AccessToken: old.AccessToken, Expiry: old.Expiry, TokenType: old.TokenType}
		err = errNeedAuthorization("refresh failed: " + err.Error())
		tok = nil
	}
	c.tok, c.err = tok, err
	close(c.done)
	s.mu.Unlock()
	if err == nil && s.persist != nil && s.shared == nil {
		s.persist(tok)
	}
	return tok, err
}

// obtain returns the token that replaces old and when it was received:
// refreshed here or, with a shared lock, possibly refreshed already by
// another process.
func (s *RefreshingTokenSource) obtain(ctx context.Context, old *oauth2.Token) (*oauth2.Token, time.Time, error) {
	if s.shared == nil {
		tok, err := s.doRefresh(ctx, old)
		return tok, s.now(), err
	}
	var tok *oauth2.Token
	var obtained time.Time
	err := s.shared.WithRefreshLock(func(stored *StoredToken) (*StoredToken, error) {
		base := old
		if stored != nil && stored.Token != nil && supersedes(stored.Token, old) {
			if s.isFresh(stored.Token, stored.ObtainedAt) {
				// Another process refreshed while we waited for the
				// lock: use its token; refreshing again would present
				// a rotated refresh token.
				tok, obtained = stored.Token, stored.ObtainedAt
				return nil, nil
			}
			if stored.Token.RefreshToken != "" {
				// Rotated by another process and stale again since:
				// ours is dead, the stored one is the current one.
				base = stored.Token
			}
		}
		t, err := s.doRefresh(ctx, base)
		if err != nil {
			return nil, err
		}
		tok, obtained = t, s.now()
		return &StoredToken{Token: t, ObtainedAt: obtained}, nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return tok, obtained, nil
}

// supersedes reports whether stored is another token than old (another
// process refreshed or logged in since old was read).
func supersedes(stored, old *oauth2.Token) bool {
	return stored.AccessToken != old.AccessToken || stored.RefreshToken != old.RefreshToken
}

func (s *RefreshingTokenSource) doRefresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	s.mu.Lock()
	s.refresh++
	s.mu.Unlock()
	// The caller may be a request whose context ends soon; the refresh is
	// shared, so it runs on its own context bounded by the HTTP client's
	// timeout. Marking the token endpoint lets the transport send the
	// refresh again when the server answered 5xx or 429 (no token was
	// issued then), never after a network error.
	rctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, s.client)
	rctx = WithTokenEndpoint(rctx, s.cfg.Endpoint.TokenURL)
	tok, err := s.cfg.TokenSource(rctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		// RFC 6749 §6: the server may keep the old refresh token.
		tok.RefreshToken = old.RefreshToken
	}
	if _, ok := tok.Extra("scope").(string); !ok {
		if sc, ok := old.Extra("scope").(string); ok {
			tok = tok.WithExtra(map[string]any{"scope": sc})
		}
	}
	return tok, nil
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

func isInvalidClient(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client"
	}
	var ae *AuthorizationError
	return errors.As(err, &ae) && (ae.Code == "invalid_client" || ae.Code == "unauthorized_client")
}
