package authserver

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenAuthorizationCodeIssuesSignedTokens(t *testing.T) {
	e := newEnv(t, nil)
	a := e.authorize(authzParams{scope: "openid mcp:read offline_access", resource: testResource, nonce: "n-1"})
	resp := e.exchange(a, url.Values{"resource": {testResource}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	body := decode(t, resp)
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, float64(3600), body["expires_in"])
	assert.Equal(t, "openid mcp:read offline_access", body["scope"])
	require.NotEmpty(t, body["refresh_token"])

	access := str(body["access_token"])
	claims := e.verify(access, jwt.WithAudience(testResource), jwt.WithIssuer("http://issuer.test"))
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "email", "name"} {
		assert.Contains(t, claims, k)
	}
	assert.Equal(t, testResource, claims["aud"], "aud is a string")
	assert.Equal(t, "alice", claims["sub"])
	assert.Equal(t, "Alice Example", claims["name"])
	assert.Equal(t, testPublicClient, claims["client_id"])
	tok, _, err := jwt.NewParser().ParseUnverified(access, jwt.MapClaims{})
	require.NoError(t, err)
	assert.NotEmpty(t, tok.Header["kid"])
	assert.Equal(t, "at+jwt", tok.Header["typ"])

	id := e.verify(str(body["id_token"]), jwt.WithAudience(testPublicClient))
	assert.Equal(t, "n-1", id["nonce"])
	assert.Equal(t, "alice@example.com", id["email"])
}

func TestTokenAudienceDefaultsToClientAndNoIDTokenWithoutOpenID(t *testing.T) {
	e := newEnv(t, nil)
	body := e.login(authzParams{scope: "mcp:read"})
	assert.NotContains(t, body, "id_token")
	claims := e.verify(str(body["access_token"]))
	assert.Equal(t, testPublicClient, claims["aud"])
}

func TestTokenES256(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Keys.Algorithm = "ES256"; c.Keys.PrivateKeyFile = "" })
	body := e.login(authzParams{scope: "mcp:read"})
	tok, _, err := jwt.NewParser().ParseUnverified(str(body["access_token"]), jwt.MapClaims{})
	require.NoError(t, err)
	assert.Equal(t, "ES256", tok.Method.Alg())
	e.verify(str(body["access_token"]))
	assert.Equal(t, true, e.introspect(str(body["access_token"]))["active"])
}

func TestTokenCodeReplayRevokesIssuedTokens(t *testing.T) {
	e := newEnv(t, nil)
	a := e.authorize(authzParams{scope: "mcp:read offline_access"})
	first := e.exchange(a, nil)
	require.Equal(t, http.StatusOK, first.StatusCode)
	tokens := decode(t, first)
	assert.Equal(t, true, e.introspect(str(tokens["access_token"]))["active"])

	requireOAuthError(t, e.exchange(a, nil), http.StatusBadRequest, ErrInvalidGrant)
	assert.Equal(t, false, e.introspect(str(tokens["access_token"]))["active"])
	assert.Equal(t, false, e.introspect(str(tokens["refresh_token"]))["active"])
	requireOAuthError(t, e.refresh(str(tokens["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
}

func TestTokenCodeExpires(t *testing.T) {
	e := newEnv(t, nil)
	a := e.authorize(authzParams{})
	e.clock.Advance(61 * time.Second)
	requireOAuthError(t, e.exchange(a, nil), http.StatusBadRequest, ErrInvalidGrant)

	require.NoError(t, e.srv.SetLifetimes(Lifetimes{CodeTTL: 5 * time.Minute}))
	a = e.authorize(authzParams{})
	e.clock.Advance(4 * time.Minute)
	assert.Equal(t, http.StatusOK, e.exchange(a, nil).StatusCode)
}

func TestTokenCodeBindings(t *testing.T) {
	e := newEnv(t, nil)
	otherVerifier, _ := pkcePair()
	cases := []struct {
		name   string
		params authzParams
		extra  url.Values
		status int
		want   string
	}{
		{"wrong verifier", authzParams{}, url.Values{"code_verifier": {otherVerifier}}, 400, ErrInvalidGrant},
		{"short verifier", authzParams{}, url.Values{"code_verifier": {"abc"}}, 400, ErrInvalidGrant},
		{"other client", authzParams{}, url.Values{"client_id": {testOtherPublic}}, 400, ErrInvalidGrant},
		{"other redirect", authzParams{}, url.Values{"redirect_uri": {"http://127.0.0.1:3001/other"}}, 400, ErrInvalidGrant},
		{"other resource", authzParams{resource: testResource}, url.Values{"resource": {"https://other.example/"}}, 400, ErrInvalidTarget},
		{"unknown code", authzParams{}, url.Values{"code": {"not-a-code"}}, 400, ErrInvalidGrant},
		{"missing verifier", authzParams{}, url.Values{"code_verifier": {""}}, 400, ErrInvalidRequest},
		{"missing code", authzParams{}, url.Values{"code": {""}}, 400, ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := e.authorize(tc.params)
			requireOAuthError(t, e.exchange(a, tc.extra), tc.status, tc.want)
			// A request that could not redeem the code does not spend it:
			// the real client still can, and it is not taken for a replay.
			resp := e.exchange(a, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the failed attempt burned the code")
			assert.Equal(t, true, e.introspect(str(decode(t, resp)["access_token"]))["active"])
		})
	}
}

// An attacker who holds an intercepted code but not its PKCE verifier can
// neither deny the real client (by burning the code first) nor revoke the
// real client's tokens (by presenting the code again afterwards). A replay
// by someone who could have redeemed it still revokes.
func TestTokenCodeWithoutVerifierCannotBurnOrRevoke(t *testing.T) {
	for _, driver := range []string{"memory", "sqlite"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Storage.Driver = driver
				c.Storage.SQLitePath = filepath.Join(t.TempDir(), "as.db")
			})
			wrong, _ := pkcePair()
			a := e.authorize(authzParams{scope: "mcp:read offline_access"})
			requireOAuthError(t, e.exchange(a, url.Values{"code_verifier": {wrong}}), http.StatusBadRequest, ErrInvalidGrant)
			first := e.exchange(a, nil)
			require.Equal(t, http.StatusOK, first.StatusCode)
			tokens := decode(t, first)

			requireOAuthError(t, e.exchange(a, url.Values{"code_verifier": {wrong}}), http.StatusBadRequest, ErrInvalidGrant)
			requireOAuthError(t, e.exchange(a, url.Values{"client_id": {testOtherPublic}}), http.StatusBadRequest, ErrInvalidGrant)
			assert.Equal(t, true, e.introspect(str(tokens["access_token"]))["active"], "a verifier-less replay revoked the grant")
			assert.Equal(t, true, e.introspect(str(tokens["refresh_token"]))["active"])

			requireOAuthError(t, e.exchange(a, nil), http.StatusBadRequest, ErrInvalidGrant)
			assert.Equal(t, false, e.introspect(str(tokens["access_token"]))["active"], "a real replay must revoke")
			assert.Equal(t, false, e.introspect(str(tokens["refresh_token"]))["active"])
		})
	}
}

// Single use holds under concurrency with the check-then-take: of many
// simultaneous redemptions, mixed with attempts without the verifier,
// exactly one gets tokens and the others get invalid_grant.
func TestTokenConcurrentRedemptionIssuesOnce(t *testing.T) {
	for _, driver := range []string{"memory", "sqlite"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Storage.Driver = driver
				c.Storage.SQLitePath = filepath.Join(t.TempDir(), "as.db")
			})
			wrong, _ := pkcePair()
			for round := range 5 {
				a := e.authorize(authzParams{})
				var wg sync.WaitGroup
				statuses := make([]int, 16)
				for i := range statuses {
					extra := url.Values{}
					if i%4 == 3 {
						extra.Set("code_verifier", wrong)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := e.client.PostForm(e.ts.URL+"/token", mergeForm(e.exchangeForm(a), extra))
						if assert.NoError(t, err) {
							statuses[i] = resp.StatusCode
							_ = resp.Body.Close()
						}
					}()
				}
				wg.Wait()
				ok := 0
				for _, st := range statuses {
					if st == http.StatusOK {
						ok++
					} else {
						assert.Equal(t, http.StatusBadRequest, st)
					}
				}
				assert.Equal(t, 1, ok, "round %d: %v", round, statuses)
			}
		})
	}
}

func mergeForm(form, extra url.Values) url.Values {
	for k, v := range extra {
		form[k] = v
	}
	return form
}

func TestTokenClientCredentials(t *testing.T) {
	e := newEnv(t, nil)
	for name, send := range map[string]func(url.Values) *http.Response{
		"basic": func(f url.Values) *http.Response {
			return e.postForm("/token", f, basic(testServiceClient, testServiceSecret))
		},
		"post": func(f url.Values) *http.Response {
			f.Set("client_id", testServiceClient)
			f.Set("client_secret", testServiceSecret)
			return e.postForm("/token", f, nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			resp := send(url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:read mcp:audit"}, "resource": {testResource}})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			body := decode(t, resp)
			assert.NotContains(t, body, "refresh_token")
			assert.NotContains(t, body, "id_token")
			claims := e.verify(str(body["access_token"]), jwt.WithAudience(testResource))
			assert.Equal(t, testServiceClient, claims["sub"])
			assert.Equal(t, testServiceClient, claims["client_id"])
			assert.Equal(t, "mcp:read mcp:audit", claims["scope"])
		})
	}
	t.Run("default scope is the client's", func(t *testing.T) {
		resp := e.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, basic(testServiceClient, testServiceSecret))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "mcp:read mcp:write mcp:audit", decode(t, resp)["scope"])
	})
}

func TestTokenClientAuthenticationErrors(t *testing.T) {
	e := newEnv(t, nil)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:read"}}
	t.Run("wrong secret via basic", func(t *testing.T) {
		resp := e.postForm("/token", cc, basic(testServiceClient, "wrong"))
		requireOAuthError(t, resp, http.StatusUnauthorized, ErrInvalidClient)
		assert.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic"))
	})
	t.Run("unknown client via basic", func(t *testing.T) {
		resp := e.postForm("/token", cc, basic("nobody", "x"))
		requireOAuthError(t, resp, http.StatusUnauthorized, ErrInvalidClient)
		assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
	})
	t.Run("wrong secret via post", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {testServiceClient}, "client_secret": {"wrong"}}
		requireOAuthError(t, e.postForm("/token", f, nil), http.StatusUnauthorized, ErrInvalidClient)
	})
	t.Run("confidential client without secret", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {testServiceClient}}
		requireOAuthError(t, e.postForm("/token", f, nil), http.StatusUnauthorized, ErrInvalidClient)
	})
	t.Run("public client with a secret", func(t *testing.T) {
		a := e.authorize(authzParams{})
		requireOAuthError(t, e.exchange(a, url.Values{"client_secret": {"x"}}), http.StatusUnauthorized, ErrInvalidClient)
	})
	t.Run("two methods at once", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_secret": {testServiceSecret}}
		requireOAuthError(t, e.postForm("/token", f, basic(testServiceClient, testServiceSecret)), http.StatusBadRequest, ErrInvalidRequest)
	})
	t.Run("basic id differs from form id", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {testConfClient}}
		requireOAuthError(t, e.postForm("/token", f, basic(testServiceClient, testServiceSecret)), http.StatusBadRequest, ErrInvalidRequest)
	})
	t.Run("bearer scheme", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {testServiceClient}}
		requireOAuthError(t, e.postForm("/token", f, http.Header{"Authorization": {"Bearer x"}}), http.StatusUnauthorized, ErrInvalidClient)
	})
	t.Run("no client at all", func(t *testing.T) {
		requireOAuthError(t, e.postForm("/token", cc, nil), http.StatusUnauthorized, ErrInvalidClient)
	})
	t.Run("secret with reserved characters in basic", func(t *testing.T) {
		require.NoError(t, e.srv.AddClient(ClientConfig{
			ClientID: "odd:client", ClientSecret: "p@ss:w%rd+", GrantTypes: []string{GrantClientCredentials},
			Scopes: []string{"mcp:read"}, TokenEndpointAuthMethod: AuthClientSecretBasic,
		}))
		resp := e.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, basic("odd:client", "p@ss:w%rd+"))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestTokenGrantErrors(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("client_credentials for a public client", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {testPublicClient}}
		requireOAuthError(t, e.postForm("/token", f, nil), http.StatusBadRequest, ErrUnauthorizedClient)
	})
	t.Run("scope outside the client", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid mcp:read"}}
		requireOAuthError(t, e.postForm("/token", f, basic(testServiceClient, testServiceSecret)), http.StatusBadRequest, ErrInvalidScope)
	})
	t.Run("bad resource", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "resource": {"relative/path"}}
		requireOAuthError(t, e.postForm("/token", f, basic(testServiceClient, testServiceSecret)), http.StatusBadRequest, ErrInvalidTarget)
	})
	t.Run("two resources", func(t *testing.T) {
		body := "grant_type=client_credentials&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F"
		requireOAuthError(t, e.post("/token", "application/x-www-form-urlencoded", body, basic(testServiceClient, testServiceSecret)), http.StatusBadRequest, ErrInvalidTarget)
	})
	t.Run("password grant", func(t *testing.T) {
		f := url.Values{"grant_type": {"password"}, "client_id": {testPublicClient}, "username": {"alice"}, "password": {"x"}}
		requireOAuthError(t, e.postForm("/token", f, nil), http.StatusBadRequest, ErrUnsupportedGrantType)
	})
	t.Run("grant not registered for client", func(t *testing.T) {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
		requireOAuthError(t, e.postForm("/token", f, basic(testServiceClient, testServiceSecret)), http.StatusBadRequest, ErrUnauthorizedClient)
	})
	t.Run("GET not allowed", func(t *testing.T) {
		assert.Equal(t, http.StatusMethodNotAllowed, e.get("/token", nil).StatusCode)
	})
}

// TestTokenBadInputChangesNothing sends malformed requests carrying a good
// code: each gets invalid_request (or invalid_client) and the code still
// works afterwards.
func TestTokenBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	cases := map[string]func(form url.Values) (string, string){
		"missing grant_type": func(f url.Values) (string, string) {
			f.Del("grant_type")
			return "application/x-www-form-urlencoded", f.Encode()
		},
		"duplicate grant_type": func(f url.Values) (string, string) {
			return "application/x-www-form-urlencoded", f.Encode() + "&grant_type=authorization_code"
		},
		"duplicate code": func(f url.Values) (string, string) {
			return "application/x-www-form-urlencoded", f.Encode() + "&code=" + f.Get("code")
		},
		"malformed escape": func(f url.Values) (string, string) {
			return "application/x-www-form-urlencoded", f.Encode() + "&x=%zz"
		},
		"json body":        func(f url.Values) (string, string) { return "application/json", `{"grant_type":"authorization_code"}` },
		"text body":        func(f url.Values) (string, string) { return "text/plain", f.Encode() },
		"no content type":  func(f url.Values) (string, string) { return "", f.Encode() },
		"multipart":        func(f url.Values) (string, string) { return "multipart/form-data; boundary=x", f.Encode() },
		"empty body":       func(url.Values) (string, string) { return "application/x-www-form-urlencoded", "" },
		"bad content type": func(f url.Values) (string, string) { return "application/x-www-form-urlencoded; =;", f.Encode() },
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			a := e.authorize(authzParams{})
			ct, body := build(e.exchangeForm(a))
			requireOAuthError(t, e.post("/token", ct, body, nil), http.StatusBadRequest, ErrInvalidRequest)
			assert.Equal(t, http.StatusOK, e.exchange(a, nil).StatusCode, "the bad request consumed the code")
		})
	}
	t.Run("missing client_id", func(t *testing.T) {
		a := e.authorize(authzParams{})
		f := e.exchangeForm(a)
		f.Del("client_id")
		requireOAuthError(t, e.postForm("/token", f, nil), http.StatusUnauthorized, ErrInvalidClient)
		assert.Equal(t, http.StatusOK, e.exchange(a, nil).StatusCode)
	})
	t.Run("oversized body", func(t *testing.T) {
		a := e.authorize(authzParams{})
		f := e.exchangeForm(a)
		f.Set("pad", strings.Repeat("a", 70000))
		resp := e.postForm("/token", f, nil)
		requireOAuthError(t, resp, http.StatusRequestEntityTooLarge, ErrInvalidRequest)
		assert.Equal(t, http.StatusOK, e.exchange(a, nil).StatusCode)
	})
}

func TestVerifyPKCE(t *testing.T) {
	verifier, challenge := pkcePair()
	assert.True(t, verifyPKCE(verifier, challenge))
	assert.False(t, verifyPKCE(verifier+"x", challenge))
	assert.False(t, verifyPKCE(strings.Repeat("a", 129), challenge))
	assert.False(t, verifyPKCE(strings.Repeat("a", 42)+"!", challenge))
}
