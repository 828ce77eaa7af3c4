package authserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (e *env) register(body string, header http.Header) *http.Response {
	return e.post("/register", "application/json", body, header)
}

func TestRegisterConfidentialClient(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.register(`{"client_name":"conf","redirect_uris":["https://app.example/cb"],
		"grant_types":["authorization_code","refresh_token"],"response_types":["code"],
		"token_endpoint_auth_method":"client_secret_basic","scope":"mcp:read mcp:write","unknown_field":1}`, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	body := decode(t, resp)
	assert.NotEmpty(t, body["client_id"])
	assert.NotEmpty(t, body["client_secret"])
	assert.Equal(t, float64(0), body["client_secret_expires_at"])
	assert.Equal(t, float64(e.clock.Now().Unix()), body["client_id_issued_at"])
	assert.Equal(t, "mcp:read mcp:write", body["scope"])
	assert.Equal(t, "client_secret_basic", body["token_endpoint_auth_method"])

	// The secret is stored hashed and works.
	c, err := e.srv.store.GetClient(t.Context(), str(body["client_id"]))
	require.NoError(t, err)
	assert.NotContains(t, c.SecretHash, str(body["client_secret"]))
	a := e.authorize(authzParams{clientID: str(body["client_id"]), redirect: "https://app.example/cb", scope: "mcp:read"})
	form := e.exchangeForm(a)
	form.Del("client_id")
	resp = e.postForm("/token", form, basic(str(body["client_id"]), str(body["client_secret"])))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestRegisterPublicClientDefaults(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.register(`{"redirect_uris":["http://127.0.0.1:3001/callback"],"token_endpoint_auth_method":"none","scope":"mcp:read no-such-scope"}`, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	body := decode(t, resp)
	assert.NotContains(t, body, "client_secret")
	assert.Equal(t, "mcp:read", body["scope"], "unknown scopes are dropped, not refused")
	assert.Equal(t, []any{"authorization_code"}, body["grant_types"])
	assert.Equal(t, []any{"code"}, body["response_types"])
	tok := e.login(authzParams{clientID: str(body["client_id"]), scope: "mcp:read"})
	assert.Equal(t, str(body["client_id"]), e.verify(str(tok["access_token"]))["client_id"])
}

func TestRegisterClientCredentialsOnly(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.register(`{"grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_post","scope":"mcp:read"}`, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	body := decode(t, resp)
	assert.Equal(t, []any{}, body["response_types"])
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {str(body["client_id"])}, "client_secret": {str(body["client_secret"])}}
	resp = e.postForm("/token", f, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "mcp:read", decode(t, resp)["scope"])
}

func TestRegisterBadRedirectURIs(t *testing.T) {
	e := newEnv(t, nil)
	for name, uris := range map[string]string{
		"http non-loopback": `["http://evil.example/cb"]`,
		"relative":          `["/cb"]`,
		"fragment":          `["https://app.example/cb#f"]`,
		"javascript":        `["javascript:alert(1)"]`,
		"data":              `["data:text/html,x"]`,
		"empty":             `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.register(`{"token_endpoint_auth_method":"none","redirect_uris":`+uris+`}`, nil)
			requireOAuthError(t, resp, http.StatusBadRequest, ErrInvalidRedirectURI)
		})
	}
	n, err := e.srv.store.CountDynamicClients(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing stored")
}

func TestRegisterBadMetadata(t *testing.T) {
	e := newEnv(t, nil)
	for name, extra := range map[string]string{
		"password grant":            `"grant_types":["password"]`,
		"implicit":                  `"grant_types":["implicit"],"response_types":["token"]`,
		"token response":            `"response_types":["token"]`,
		"unknown auth method":       `"token_endpoint_auth_method":"private_key_jwt"`,
		"grant not a list":          `"grant_types":"authorization_code"`,
		"name not a string":         `"client_name":42`,
		"public client_credentials": `"token_endpoint_auth_method":"none","grant_types":["client_credentials"],"response_types":[]`,
		"code without response":     `"grant_types":["authorization_code"],"response_types":[]`,
		"refresh alone":             `"grant_types":["refresh_token"],"response_types":[]`,
		"empty grants":              `"grant_types":[],"response_types":[]`,
		"huge name":                 `"client_name":"` + strings.Repeat("n", 300) + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			body := `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic",` + extra + `}`
			// A later duplicate key wins in encoding/json, which is what the extra relies on.
			requireOAuthError(t, e.register(body, nil), http.StatusBadRequest, ErrInvalidClientMetadata)
		})
	}
}

func TestRegisterMalformedBodies(t *testing.T) {
	e := newEnv(t, nil)
	for name, tc := range map[string]struct{ body, ct, want string }{
		"truncated json": {`{"redirect_uris": ["https://a.example/cb"`, "application/json", ErrInvalidClientMetadata},
		"json array":     {`[1,2,3]`, "application/json", ErrInvalidClientMetadata},
		"two objects":    {`{} {}`, "application/json", ErrInvalidClientMetadata},
		"stray bracket":  {`{"redirect_uris":["https://a.example/cb"]}]`, "application/json", ErrInvalidClientMetadata},
		"null":           {`null`, "application/json", ErrInvalidClientMetadata},
		"string":         {`"x"`, "application/json", ErrInvalidClientMetadata},
		"form body":      {"redirect_uris=https%3A%2F%2Fa.example%2Fcb", "application/x-www-form-urlencoded", ErrInvalidRequest},
		"no type":        {`{}`, "", ErrInvalidRequest},
	} {
		t.Run(name, func(t *testing.T) {
			requireOAuthError(t, e.post("/register", tc.ct, tc.body, nil), http.StatusBadRequest, tc.want)
		})
	}
	t.Run("oversized", func(t *testing.T) {
		body := `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("a", 70000) + `"}`
		requireOAuthError(t, e.register(body, nil), http.StatusRequestEntityTooLarge, ErrInvalidRequest)
	})
	n, err := e.srv.store.CountDynamicClients(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestRegisterCapAndInitialAccessToken(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Registration.MaxClients = 2
		c.Registration.InitialAccessToken = "let-me-in"
	})
	body := `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`
	resp := e.register(body, nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, ErrInvalidToken, decode(t, resp)["error"])
	assert.Equal(t, http.StatusUnauthorized, e.register(body, http.Header{"Authorization": {"Bearer wrong"}}).StatusCode)
	auth := http.Header{"Authorization": {"Bearer let-me-in"}}
	require.Equal(t, http.StatusCreated, e.register(body, auth).StatusCode)
	require.Equal(t, http.StatusCreated, e.register(body, auth).StatusCode)
	requireOAuthError(t, e.register(body, auth), http.StatusServiceUnavailable, ErrTemporarilyUnavailable)
}

// TestRegisterCapHoldsUnderConcurrency fires more concurrent registrations
// than registration.max_clients allows: exactly max_clients are created and
// every other one gets the cap's standard error, in both stores.
func TestRegisterCapHoldsUnderConcurrency(t *testing.T) {
	const maxClients, racers = 5, 32
	for _, driver := range []string{"memory", "sqlite"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Registration.MaxClients = maxClients
				c.Storage.Driver = driver
				c.Storage.SQLitePath = filepath.Join(t.TempDir(), "as.db")
			})
			body := `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`
			statuses := make([]int, racers)
			errs := make([]any, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// No require here: FailNow must not run off the test goroutine.
					resp, err := e.client.Post(e.ts.URL+"/register", "application/json", strings.NewReader(body))
					if !assert.NoError(t, err) {
						return
					}
					defer func() { _ = resp.Body.Close() }()
					statuses[i] = resp.StatusCode
					var out map[string]any
					if assert.NoError(t, json.NewDecoder(resp.Body).Decode(&out)) {
						errs[i] = out["error"]
					}
				}()
			}
			wg.Wait()
			created := 0
			for i, st := range statuses {
				if st == http.StatusCreated {
					created++
					continue
				}
				assert.Equal(t, http.StatusServiceUnavailable, st)
				assert.Equal(t, ErrTemporarilyUnavailable, errs[i])
			}
			assert.Equal(t, maxClients, created)
			n, err := e.srv.store.CountDynamicClients(t.Context())
			require.NoError(t, err)
			assert.Equal(t, maxClients, n)
		})
	}
}

// RFC 7591 member names are case-sensitive; encoding/json is not, so a
// member that differs from a known one only by case (Unicode folding
// included) is refused rather than silently read as the known one.
func TestRegisterMemberNamesAreCaseSensitive(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{
		`{"REDIRECT_URIS":["http://127.0.0.1:3001/callback"]}`,
		`{"redirect_uris":["http://127.0.0.1:3001/callback"],"Token_Endpoint_Auth_Method":"none"}`,
		`{"redirect_uris":["http://127.0.0.1:3001/callback"],"Client_Name":"x"}`,
		`{"redirect_uris":["http://127.0.0.1:3001/callback"],"\u017fcope":"mcp:read"}`, // long s folds to s
		`{"redirect_uris":["http://127.0.0.1:3001/callback"],"redirect_uris":["http://127.0.0.1:3001/callback"],"Redirect_uris":[]}`,
	} {
		resp := e.register(body, nil)
		requireOAuthError(t, resp, http.StatusBadRequest, ErrInvalidClientMetadata)
	}
	n, err := e.srv.store.CountDynamicClients(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing stored")
	// Exact names, and members this server does not know, are fine.
	resp := e.register(`{"redirect_uris":["http://127.0.0.1:3001/callback"],"client_name":"x","contacts":["a@example.com"],"Software_ID":"s"}`, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
}

// registration.client_ttl: once max_clients is reached, a client registered
// and unused for longer than client_ttl is swept to make room; a client in
// use, or holding a live refresh token, is not. 0 keeps clients for ever.
func TestRegisterSweepsIdleClientsWhenFull(t *testing.T) {
	for _, driver := range []string{"memory", "sqlite"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Registration.MaxClients = 3
				c.Registration.ClientTTL = time.Hour
				c.Storage.Driver = driver
				c.Storage.SQLitePath = filepath.Join(t.TempDir(), "as.db")
			})
			body := `{"redirect_uris":["http://127.0.0.1:3001/callback"],"grant_types":["authorization_code","refresh_token"],"scope":"mcp:read offline_access"}`
			register := func() string {
				resp := e.register(body, nil)
				require.Equal(t, http.StatusCreated, resp.StatusCode)
				return str(decode(t, resp)["client_id"])
			}
			idle, used, granted := register(), register(), register()
			tokens := e.login(authzParams{clientID: granted, scope: "mcp:read offline_access"})
			require.NotEmpty(t, tokens["refresh_token"])
			requireOAuthError(t, e.register(body, nil), http.StatusServiceUnavailable, ErrTemporarilyUnavailable)

			e.clock.Advance(50 * time.Minute)
			e.authorize(authzParams{clientID: used}) // a use: idle time starts again
			e.clock.Advance(20 * time.Minute)
			// idle: 70 min since registration, never used; used: 20 min;
			// granted: idle but its refresh token is live.
			fresh := register()
			for id, kept := range map[string]bool{idle: false, used: true, granted: true, fresh: true} {
				_, err := e.srv.store.GetClient(t.Context(), id)
				assert.Equal(t, kept, err == nil, id)
			}
			requireOAuthError(t, e.register(body, nil), http.StatusServiceUnavailable, ErrTemporarilyUnavailable)
			resp := e.refresh(str(tokens["refresh_token"]), granted, nil)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "a client with a live grant keeps working")
		})
	}
}

func TestRegisterClientTTLZeroKeepsClients(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Registration.MaxClients = 1
		c.Registration.ClientTTL = 0
	})
	body := `{"redirect_uris":["http://127.0.0.1:3001/callback"]}`
	require.Equal(t, http.StatusCreated, e.register(body, nil).StatusCode)
	e.clock.Advance(365 * 24 * time.Hour)
	requireOAuthError(t, e.register(body, nil), http.StatusServiceUnavailable, ErrTemporarilyUnavailable)
}
