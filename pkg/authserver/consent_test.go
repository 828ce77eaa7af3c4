package authserver

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// consentPageFor opens the consent page and returns the hidden fields and
// the CSRF cookie.
func consentPageFor(t *testing.T, e *env, p authzParams) (requestID, csrf string, cookie *http.Cookie, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	resp := e.get("/authorize?"+authorizeQuery(p, challenge, "st").Encode(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	page := string(body)
	assert.Contains(t, page, "HTTP OAuth2 MCP client")
	assert.Contains(t, page, "127.0.0.1:3001")
	assert.Contains(t, page, "alice@example.com")
	assert.Contains(t, page, "mcp:read")
	field := func(name string) string {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(page)
		require.Len(t, m, 2, name)
		return m[1]
	}
	for _, c := range resp.Cookies() {
		if c.Name == csrfCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie)
	assert.True(t, cookie.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	return field("request_id"), field("csrf_token"), cookie, verifier
}

func cookieHeader(c *http.Cookie) http.Header {
	return http.Header{"Cookie": {c.Name + "=" + c.Value}}
}

func manualEnv(t *testing.T) *env {
	return newEnv(t, func(c *Config) { c.Mock.AutoApprove = false })
}

func TestConsentApproveAsChosenUser(t *testing.T) {
	e := manualEnv(t)
	id, csrf, cookie, verifier := consentPageFor(t, e, authzParams{scope: "openid mcp:read"})
	form := url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"bob"}}
	params := decisionRedirectQuery(t, e.postForm("/authorize/decision", form, cookieHeader(cookie)), testRedirect)
	require.NotEmpty(t, params.Get("code"))
	assert.Equal(t, "st", params.Get("state"))
	assert.Equal(t, e.srv.Issuer(), params.Get("iss"))
	tok := e.exchange(authorized{code: params.Get("code"), verifier: verifier, redirect: testRedirect, clientID: testPublicClient}, nil)
	require.Equal(t, http.StatusOK, tok.StatusCode)
	claims := e.verify(str(decode(t, tok)["access_token"]))
	assert.Equal(t, "bob", claims["sub"])
	assert.Equal(t, "bob@example.com", claims["email"])

	// The decision is single-use.
	resp := e.postForm("/authorize/decision", form, cookieHeader(cookie))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestConsentCustomSubjectAndClaims(t *testing.T) {
	e := manualEnv(t)
	id, csrf, cookie, verifier := consentPageFor(t, e, authzParams{scope: "mcp:read"})
	form := url.Values{
		"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {customUserSentinel},
		"custom_subject": {"carol"}, "custom_claims": {`{"email":"carol@example.com","groups":["dev"]}`},
	}
	params := decisionRedirectQuery(t, e.postForm("/authorize/decision", form, cookieHeader(cookie)), testRedirect)
	tok := e.exchange(authorized{code: params.Get("code"), verifier: verifier, redirect: testRedirect, clientID: testPublicClient}, nil)
	require.Equal(t, http.StatusOK, tok.StatusCode)
	claims := e.verify(str(decode(t, tok)["access_token"]))
	assert.Equal(t, "carol", claims["sub"])
	assert.Equal(t, "carol@example.com", claims["email"])
	assert.Equal(t, []any{"dev"}, claims["groups"])
}

func TestConsentBadCustomClaims(t *testing.T) {
	for name, claims := range map[string]string{
		"not json":       `{nope`,
		"array":          `[1]`,
		"reserved claim": `{"sub":"admin"}`,
		"aud override":   `{"aud":"https://evil.example"}`,
		"trailing data":  `{} {}`,
		"null":           `null`,
	} {
		t.Run(name, func(t *testing.T) {
			e := manualEnv(t)
			id, csrf, cookie, _ := consentPageFor(t, e, authzParams{})
			form := url.Values{
				"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {customUserSentinel},
				"custom_subject": {"carol"}, "custom_claims": {claims},
			}
			params := decisionRedirectQuery(t, e.postForm("/authorize/decision", form, cookieHeader(cookie)), testRedirect)
			assert.Equal(t, ErrInvalidRequest, params.Get("error"))
			assert.Empty(t, params.Get("code"))
		})
	}
}

func TestConsentDeny(t *testing.T) {
	e := manualEnv(t)
	id, csrf, cookie, _ := consentPageFor(t, e, authzParams{})
	form := url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"deny"}, "user": {"alice"}}
	params := decisionRedirectQuery(t, e.postForm("/authorize/decision", form, cookieHeader(cookie)), testRedirect)
	assert.Equal(t, ErrAccessDenied, params.Get("error"))
	assert.Equal(t, "st", params.Get("state"))
	assert.Equal(t, e.srv.Issuer(), params.Get("iss"))
	assert.Empty(t, params.Get("code"))
}

func TestConsentDenyNextLoginAppliesToApprove(t *testing.T) {
	e := manualEnv(t)
	id, csrf, cookie, _ := consentPageFor(t, e, authzParams{})
	e.srv.DenyNextLogin()
	form := url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"alice"}}
	params := decisionRedirectQuery(t, e.postForm("/authorize/decision", form, cookieHeader(cookie)), testRedirect)
	assert.Equal(t, ErrAccessDenied, params.Get("error"))
}

func TestConsentCSRF(t *testing.T) {
	cases := map[string]func(id, csrf string, c *http.Cookie) (url.Values, http.Header){
		"no cookie": func(id, csrf string, _ *http.Cookie) (url.Values, http.Header) {
			return url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"alice"}}, nil
		},
		"wrong form token": func(id, _ string, c *http.Cookie) (url.Values, http.Header) {
			return url.Values{"request_id": {id}, "csrf_token": {"forged"}, "action": {"approve"}, "user": {"alice"}}, cookieHeader(c)
		},
		"wrong cookie": func(id, csrf string, _ *http.Cookie) (url.Values, http.Header) {
			return url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"alice"}},
				http.Header{"Cookie": {csrfCookie + "=forged"}}
		},
		"unknown request": func(_, csrf string, c *http.Cookie) (url.Values, http.Header) {
			return url.Values{"request_id": {"nope"}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"alice"}}, cookieHeader(c)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			e := manualEnv(t)
			id, csrf, cookie, _ := consentPageFor(t, e, authzParams{})
			form, h := build(id, csrf, cookie)
			resp := e.postForm("/authorize/decision", form, h)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Location"))
		})
	}
}

func TestConsentPendingExpires(t *testing.T) {
	e := manualEnv(t)
	id, csrf, cookie, _ := consentPageFor(t, e, authzParams{})
	e.clock.Advance(pendingTTL + 1)
	form := url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"alice"}}
	assert.Equal(t, http.StatusBadRequest, e.postForm("/authorize/decision", form, cookieHeader(cookie)).StatusCode)
}

func TestConsentDecisionWrongContentType(t *testing.T) {
	e := manualEnv(t)
	resp := e.post("/authorize/decision", "application/json", `{}`, nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestConsentUnknownUser(t *testing.T) {
	e := manualEnv(t)
	id, csrf, cookie, _ := consentPageFor(t, e, authzParams{})
	form := url.Values{"request_id": {id}, "csrf_token": {csrf}, "action": {"approve"}, "user": {"mallory"}}
	params := decisionRedirectQuery(t, e.postForm("/authorize/decision", form, cookieHeader(cookie)), testRedirect)
	assert.Equal(t, ErrInvalidRequest, params.Get("error"))
}
