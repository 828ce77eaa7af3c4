package authserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	e := newEnv(t, nil)
	first := e.login(authzParams{scope: "mcp:read offline_access", resource: testResource})
	resp := e.refresh(str(first["refresh_token"]), testPublicClient, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	second := decode(t, resp)
	require.NotEqual(t, first["refresh_token"], second["refresh_token"])
	claims := e.verify(str(second["access_token"]))
	assert.Equal(t, testResource, claims["aud"], "the resource carries over")
	assert.Equal(t, "alice@example.com", claims["email"], "the user's claims carry over")

	// Reusing the rotated token is theft: the whole family dies.
	requireOAuthError(t, e.refresh(str(first["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	requireOAuthError(t, e.refresh(str(second["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	assert.Equal(t, false, e.introspect(str(second["access_token"]))["active"])
	assert.Equal(t, false, e.introspect(str(first["access_token"]))["active"])
}

func TestRefreshScopeMayOnlyNarrow(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{scope: "mcp:read mcp:write offline_access"})
	resp := e.refresh(str(tok["refresh_token"]), testPublicClient, url.Values{"scope": {"mcp:read"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	narrowed := decode(t, resp)
	assert.Equal(t, "mcp:read", e.verify(str(narrowed["access_token"]))["scope"])
	// The new refresh token keeps the original grant (RFC 6749 §6).
	resp = e.refresh(str(narrowed["refresh_token"]), testPublicClient, url.Values{"scope": {"mcp:write"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	widened := decode(t, resp)
	resp = e.refresh(str(widened["refresh_token"]), testPublicClient, url.Values{"scope": {"mcp:read mcp:audit"}})
	requireOAuthError(t, resp, http.StatusBadRequest, ErrInvalidScope)
}

// TestRefreshRequestErrorsDoNotBurnTheToken: a refused wider scope or
// another resource leaves the refresh token usable (else the client's next
// try would look like reuse and lose the grant).
func TestRefreshRequestErrorsDoNotBurnTheToken(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{scope: "mcp:read offline_access", resource: testResource})
	rt := str(tok["refresh_token"])
	requireOAuthError(t, e.refresh(rt, testPublicClient, url.Values{"scope": {"mcp:write"}}), http.StatusBadRequest, ErrInvalidScope)
	requireOAuthError(t, e.refresh(rt, testPublicClient, url.Values{"resource": {"https://other.example/"}}), http.StatusBadRequest, ErrInvalidTarget)
	assert.Equal(t, http.StatusOK, e.refresh(rt, testPublicClient, nil).StatusCode)
}

func TestRefreshErrors(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("other client cannot use or burn it", func(t *testing.T) {
		tok := e.login(authzParams{})
		requireOAuthError(t, e.refresh(str(tok["refresh_token"]), testOtherPublic, nil), http.StatusBadRequest, ErrInvalidGrant)
		assert.Equal(t, http.StatusOK, e.refresh(str(tok["refresh_token"]), testPublicClient, nil).StatusCode)
	})
	t.Run("unknown", func(t *testing.T) {
		requireOAuthError(t, e.refresh("nope", testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	})
	t.Run("missing", func(t *testing.T) {
		requireOAuthError(t, e.refresh("", testPublicClient, nil), http.StatusBadRequest, ErrInvalidRequest)
	})
	t.Run("other resource", func(t *testing.T) {
		tok := e.login(authzParams{resource: testResource})
		resp := e.refresh(str(tok["refresh_token"]), testPublicClient, url.Values{"resource": {"https://other.example/"}})
		requireOAuthError(t, resp, http.StatusBadRequest, ErrInvalidTarget)
	})
	t.Run("expired", func(t *testing.T) {
		require.NoError(t, e.srv.SetLifetimes(Lifetimes{RefreshTokenTTL: time.Hour}))
		tok := e.login(authzParams{})
		e.clock.Advance(time.Hour + time.Second)
		requireOAuthError(t, e.refresh(str(tok["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	})
}

func TestRefreshForConfidentialClient(t *testing.T) {
	e := newEnv(t, nil)
	a := e.authorize(authzParams{clientID: testConfClient, redirect: testConfRedirect, scope: "openid mcp:read"})
	form := e.exchangeForm(a)
	form.Del("client_id")
	resp := e.postForm("/token", form, basic(testConfClient, testConfSecret))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	tok := decode(t, resp)
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}}
	// Without its secret the client cannot refresh.
	f2 := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}, "client_id": {testConfClient}}
	requireOAuthError(t, e.postForm("/token", f2, nil), http.StatusUnauthorized, ErrInvalidClient)
	resp = e.postForm("/token", f, basic(testConfClient, testConfSecret))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotEmpty(t, decode(t, resp)["id_token"])
}

// TestRefreshConcurrentReuse: of several racing uses of one refresh token,
// at most one succeeds (none when the losers revoke the family before the
// winner issues), and the race itself counts as reuse, so the family (the
// winner's new token included) ends revoked.
func TestRefreshConcurrentReuse(t *testing.T) {
	for _, driver := range []string{"memory", "sqlite"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Storage.Driver = driver
				c.Storage.SQLitePath = t.TempDir() + "/as.db"
			})
			tok := e.login(authzParams{})
			const racers = 8
			statuses := make(chan int, racers)
			bodies := make(chan map[string]any, racers)
			var wg sync.WaitGroup
			for range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok["refresh_token"])}, "client_id": {testPublicClient}}
					resp, err := e.client.PostForm(e.ts.URL+"/token", form)
					if !assert.NoError(t, err) {
						return
					}
					defer resp.Body.Close()
					var body map[string]any
					_ = json.NewDecoder(resp.Body).Decode(&body)
					statuses <- resp.StatusCode
					bodies <- body
				}()
			}
			wg.Wait()
			close(statuses)
			close(bodies)
			ok := 0
			var winner string
			for st := range statuses {
				b := <-bodies
				if st == http.StatusOK {
					ok++
					winner = str(b["refresh_token"])
				} else {
					assert.Equal(t, ErrInvalidGrant, b["error"])
				}
			}
			require.LessOrEqual(t, ok, 1)
			if ok == 1 {
				requireOAuthError(t, e.refresh(winner, testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
			}
			assert.Equal(t, false, e.introspect(str(tok["access_token"]))["active"], "the family is revoked")
		})
	}
}
