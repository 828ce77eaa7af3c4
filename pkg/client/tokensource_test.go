package client

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// loggedIn returns a token source fresh from a real login at the fake AS.
func loggedIn(t *testing.T, env *testEnv) (*Handler, *RefreshingTokenSource) {
	h := env.handler(t, nil)
	require.NoError(t, h.Login(context.Background()))
	return h, h.Current()
}

func TestRefreshBeforeExpiryIsSharedByConcurrentCallers(t *testing.T) {
	env := newEnv(t)
	env.as.tokenDelay = 50 * time.Millisecond
	_, ts := loggedIn(t, env)
	first := ts.Current()

	// Move the injected clock to just inside the refresh window.
	var now atomic.Pointer[time.Time]
	at := first.Expiry.Add(-DefaultRefreshSkew / 2)
	now.Store(&at)
	ts.now = func() time.Time { return *now.Load() }

	const callers = 20
	var wg sync.WaitGroup
	tokens := make([]*oauth2.Token, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token()
			assert.NoError(t, err)
			tokens[i] = tok
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, env.as.refreshes.Load(), "exactly one refresh request")
	for _, tok := range tokens {
		require.NotNil(t, tok)
		assert.Equal(t, tokens[0].AccessToken, tok.AccessToken)
		assert.NotEqual(t, first.AccessToken, tok.AccessToken)
	}
	// The rotated token was persisted.
	e := env.cache.FindByResource(env.mcp.URL())
	assert.Equal(t, tokens[0].RefreshToken, e.Token.RefreshToken)
	assert.ElementsMatch(t, []string{"mcp:read", "offline_access"}, strings.Fields(e.Token.Scope), "scope kept across refresh")

	// Not due yet (the clock is back before the new token's window): no refresh.
	back := first.Expiry.Add(-time.Hour / 2)
	now.Store(&back)
	_, err := ts.Token()
	require.NoError(t, err)
	assert.EqualValues(t, 1, env.as.refreshes.Load())
}

func TestRefreshInvalidGrantAsksForAuthorization(t *testing.T) {
	env := newEnv(t)
	_, ts := loggedIn(t, env)
	env.as.mu.Lock()
	env.as.refresh = map[string]fakeToken{}
	env.as.mu.Unlock()
	_, err := ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_grant", re.ErrorCode, "the SDK transport re-authorizes on invalid_grant")
	assert.Empty(t, ts.Current().RefreshToken, "dead refresh token dropped")
	// No retry storm: the next call does not hit the token endpoint again.
	_, err = ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	assert.EqualValues(t, 1, env.as.refreshes.Load())
}

func TestRefreshInvalidClientMarksClient(t *testing.T) {
	env := newEnv(t)
	h, ts := loggedIn(t, env)
	env.as.forgetClients()
	_, err := ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	assert.True(t, ts.ClientRejected())
	// The next authorization registers a new client.
	require.NoError(t, h.Login(context.Background()))
	assert.EqualValues(t, 2, env.as.registrations.Load())
}

func TestTokenWithoutRefreshTokenExpired(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := NewRefreshingTokenSource(&oauth2.Config{}, http.DefaultClient,
		&oauth2.Token{AccessToken: "a", Expiry: now.Add(time.Second)}, TokenSourceOptions{Now: func() time.Time { return now }})
	_, err := ts.Token()
	assert.True(t, isInvalidGrant(err))
	assert.Equal(t, 0, ts.Refreshes())
}

func TestShortLivedTokenIsNotRefreshedOnEveryCall(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := NewRefreshingTokenSource(&oauth2.Config{}, http.DefaultClient,
		&oauth2.Token{AccessToken: "a", RefreshToken: "r", Expiry: now.Add(2 * time.Second)},
		TokenSourceOptions{Now: func() time.Time { return now }, ObtainedAt: now})
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "a", tok.AccessToken)
	assert.Equal(t, 0, ts.Refreshes(), "a 2s token is used for its first half, not refreshed at once")
}

// retryingClient is an OAuth HTTP client with the project's retrying
// transport and no real waits.
func retryingClient(maxRetries int) *http.Client {
	rt := NewRetryTransport(nil, maxRetries)
	rt.Sleep = func(context.Context, time.Duration) error { return nil }
	return &http.Client{Timeout: 10 * time.Second, Transport: rt}
}

func TestTokenEndpoint500OnceIsRetried(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, func(c *HandlerConfig) { c.HTTPClient = retryingClient(2) })

	// The code exchange: one 500, then the same exchange succeeds.
	env.as.tokenFailures.Store(1)
	require.NoError(t, h.Login(context.Background()))
	assert.EqualValues(t, 2, env.as.tokenRequests.Load())
	assert.EqualValues(t, 1, env.as.codeExchanges.Load(), "the 500 was answered before processing")
	ts := h.Current()
	first := ts.Current()

	// A refresh answered with 500 issued nothing (RFC 6749 §5.2): the same
	// refresh token is sent again and works.
	env.as.tokenFailures.Store(1)
	tok, err := ts.ForceRefresh(context.Background(), "")
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessToken, tok.AccessToken)
	assert.EqualValues(t, 4, env.as.tokenRequests.Load())
	assert.EqualValues(t, 1, env.as.refreshes.Load())
	assert.Equal(t, 1, ts.Refreshes(), "one refresh, sent twice by the transport")

	// Always 500: bounded attempts, then a clear error.
	env.as.tokenFailures.Store(100)
	_, err = ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server_error")
	assert.EqualValues(t, 4+3, env.as.tokenRequests.Load(), "1 attempt + 2 retries")
}
