package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireDescriptionCharset checks RFC 6749 §5.2: error_description is
// only %x20-21 / %x23-5B / %x5D-7E.
func requireDescriptionCharset(t *testing.T, desc string) {
	t.Helper()
	require.NotEmpty(t, desc)
	require.LessOrEqual(t, len(desc), maxDescriptionLen)
	for i := 0; i < len(desc); i++ {
		c := desc[i]
		require.True(t, c >= 0x20 && c <= 0x7e && c != '"' && c != '\\', "byte %#x at %d in %q", c, i, desc)
	}
}

// A parameter name quoted in an error description, with a quote, a
// backslash, non-ASCII and control characters, comes out as '?'.
const hostileParam = "a\"b\\c\u00e9d\x01e\x7f\n"

func TestErrorDescriptionSanitizedInJSON(t *testing.T) {
	e := newEnv(t, nil)
	body := "grant_type=client_credentials&" + url.QueryEscape(hostileParam) + "=1&" + url.QueryEscape(hostileParam) + "=2"
	resp := e.post("/token", "application/x-www-form-urlencoded", body, basic(testServiceClient, testServiceSecret))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	out := decode(t, resp)
	require.Equal(t, ErrInvalidRequest, out["error"])
	desc := str(out["error_description"])
	requireDescriptionCharset(t, desc)
	assert.Contains(t, desc, "a?b?c??d?e??")

	long := strings.Repeat("x", 5000)
	resp = e.post("/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&"+long+"=1&"+long+"=2", basic(testServiceClient, testServiceSecret))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	requireDescriptionCharset(t, str(decode(t, resp)["error_description"]))
}

func TestErrorDescriptionSanitizedInRedirect(t *testing.T) {
	e := newEnv(t, nil)
	_, challenge := pkcePair()
	q := authorizeQuery(authzParams{}, challenge, "st-1")
	raw := q.Encode() + "&" + url.QueryEscape(hostileParam) + "=1&" + url.QueryEscape(hostileParam) + "=2"
	params := redirectQuery(t, e.get("/authorize?"+raw, nil), testRedirect)
	require.Equal(t, ErrInvalidRequest, params.Get("error"))
	require.Equal(t, "st-1", params.Get("state"))
	desc := params.Get("error_description")
	requireDescriptionCharset(t, desc)
	assert.Contains(t, desc, "a?b?c??d?e??")
}

func TestSafeDescription(t *testing.T) {
	assert.Equal(t, "plain text, kept!", safeDescription("plain text, kept!"))
	assert.Equal(t, "??", safeDescription("\u00e9"))
	assert.Equal(t, "?tab??", safeDescription("\ttab\"\\"))
	assert.Len(t, safeDescription(strings.Repeat("y", 1000)), maxDescriptionLen)
}

// Every 401 carries WWW-Authenticate (RFC 9110 §15.5.2): Basic for a
// failed client authentication whatever method was tried (RFC 6749 §5.2),
// Bearer for a bad bearer token, with error="invalid_token" only when a
// token was sent (RFC 6750 §3.1).
func TestEvery401HasAChallenge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Registration.InitialAccessToken = "iat-" + t.Name() })
	const basicChallenge = `Basic realm="http://issuer.test", charset="UTF-8"`
	const bearerBad = `Bearer realm="http://issuer.test", error="invalid_token"`
	const bearerNone = `Bearer realm="http://issuer.test"`
	cc := url.Values{"grant_type": {"client_credentials"}}
	post := url.Values{"grant_type": {"client_credentials"}, "client_id": {testServiceClient}, "client_secret": {"wrong"}}
	none := url.Values{"grant_type": {"client_credentials"}, "client_id": {testServiceClient}}
	unknown := url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	meta := `{"redirect_uris":["http://127.0.0.1:9/cb"]}`
	for _, tc := range []struct {
		name string
		do   func() *http.Response
		code string
		want string
	}{
		{"token basic wrong secret", func() *http.Response { return e.postForm("/token", cc, basic(testServiceClient, "wrong")) }, ErrInvalidClient, basicChallenge},
		{"token post wrong secret", func() *http.Response { return e.postForm("/token", post, nil) }, ErrInvalidClient, basicChallenge},
		{"token confidential client without secret", func() *http.Response { return e.postForm("/token", none, nil) }, ErrInvalidClient, basicChallenge},
		{"token unknown client", func() *http.Response { return e.postForm("/token", unknown, nil) }, ErrInvalidClient, basicChallenge},
		{"token no client at all", func() *http.Response { return e.postForm("/token", cc, nil) }, ErrInvalidClient, basicChallenge},
		{"introspect unauthenticated", func() *http.Response {
			return e.postForm("/introspect", url.Values{"token": {"x"}}, nil)
		}, ErrInvalidClient, basicChallenge},
		{"introspect public client", func() *http.Response {
			return e.postForm("/introspect", url.Values{"token": {"x"}, "client_id": {testPublicClient}}, nil)
		}, ErrInvalidClient, basicChallenge},
		{"revoke wrong secret via post", func() *http.Response {
			return e.postForm("/revoke", url.Values{"token": {"x"}, "client_id": {testServiceClient}, "client_secret": {"wrong"}}, nil)
		}, ErrInvalidClient, basicChallenge},
		{"register bad initial access token", func() *http.Response {
			return e.post("/register", "application/json", meta, bearer("wrong"))
		}, ErrInvalidToken, bearerBad},
		{"register no initial access token", func() *http.Response {
			return e.post("/register", "application/json", meta, nil)
		}, ErrInvalidToken, bearerNone},
		{"userinfo bad token", func() *http.Response { return e.get("/userinfo", bearer("not-a-token")) }, ErrInvalidToken, bearerBad},
		{"userinfo no token", func() *http.Response { return e.get("/userinfo", nil) }, ErrInvalidToken, bearerNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.do()
			challenge := resp.Header.Get("WWW-Authenticate")
			requireOAuthError(t, resp, http.StatusUnauthorized, tc.code)
			assert.Equal(t, tc.want, challenge)
		})
	}
}
