package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freeRedirect returns a loopback redirect URI on a free port.
func freeRedirect(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + "/callback"
}

func TestHeadlessFetcherReadsRedirect(t *testing.T) {
	env := newEnv(t)
	env.as.addClient("c1", testRedirect)
	f := HeadlessFetcher(http.DefaultClient, testRedirect)
	authURL := env.as.URL() + "/authorize?" + url.Values{"client_id": {"c1"}, "redirect_uri": {testRedirect},
		"code_challenge": {"x"}, "code_challenge_method": {"S256"}, "state": {"s1"}, "response_type": {"code"}}.Encode()
	res, err := f(context.Background(), &auth.AuthorizationArgs{URL: authURL})
	require.NoError(t, err)
	assert.NotEmpty(t, res.Code)
	assert.Equal(t, "s1", res.State)
	assert.Equal(t, env.as.URL(), res.Iss)

	// An unknown client gets a 400 page, not a redirect: reported as such.
	_, err = f(context.Background(), &auth.AuthorizationArgs{URL: strings.Replace(authURL, "c1", "nobody", 1)})
	var ae *AuthorizationError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "invalid_client", ae.Code)

	// Only http(s) URLs are requested.
	_, err = f(context.Background(), &auth.AuthorizationArgs{URL: "javascript:alert(1)"})
	require.Error(t, err)
}

func TestHeadlessFetcherRefusesForeignRedirect(t *testing.T) {
	srv := http.Server{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:9/login?code=stolen&state=s", http.StatusFound)
	})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, err = HeadlessFetcher(http.DefaultClient, testRedirect)(context.Background(),
		&auth.AuthorizationArgs{URL: "http://" + ln.Addr().String() + "/authorize?state=s"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not to the redirect URI")
}

func TestLoopbackFetcherWithFakeBrowser(t *testing.T) {
	redirect := freeRedirect(t)
	var shown strings.Builder
	l := &LoopbackFetcher{RedirectURI: redirect, Timeout: 10 * time.Second, Out: &shown,
		OpenBrowser: func(u string) error {
			// The "browser": first a forged callback (wrong state, ignored),
			// then the real one.
			go func() {
				resp, err := http.Get(redirect + "?code=evil&state=other")
				if err == nil {
					resp.Body.Close()
				}
				resp, err = http.Get(redirect + "?code=good&state=st&iss=http%3A%2F%2Fas")
				if err == nil {
					resp.Body.Close()
				}
			}()
			return nil
		}}
	res, err := l.Fetch(context.Background(), &auth.AuthorizationArgs{URL: "http://as.example/authorize?state=st"})
	require.NoError(t, err)
	assert.Equal(t, "good", res.Code)
	assert.Equal(t, "st", res.State)
	assert.Equal(t, "http://as", res.Iss)
	assert.Contains(t, shown.String(), "http://as.example/authorize?state=st")
}

func TestLoopbackFetcherTimeout(t *testing.T) {
	l := &LoopbackFetcher{RedirectURI: freeRedirect(t), Timeout: 50 * time.Millisecond,
		OpenBrowser: func(string) error { return nil }}
	_, err := l.Fetch(context.Background(), &auth.AuthorizationArgs{URL: "http://as.example/authorize?state=st"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timed out")
}

func TestLoopbackFetcherDenied(t *testing.T) {
	redirect := freeRedirect(t)
	l := &LoopbackFetcher{RedirectURI: redirect, Timeout: 10 * time.Second,
		OpenBrowser: func(string) error {
			go func() {
				if resp, err := http.Get(redirect + "?error=access_denied&state=st"); err == nil {
					resp.Body.Close()
				}
			}()
			return nil
		}}
	_, err := l.Fetch(context.Background(), &auth.AuthorizationArgs{URL: "http://as.example/authorize?state=st"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "login denied")
}

func TestLoopbackFetcherEndToEnd(t *testing.T) {
	env := newEnv(t)
	redirect := freeRedirect(t)
	browser := &http.Client{Timeout: 5 * time.Second}
	l := &LoopbackFetcher{RedirectURI: redirect, Timeout: 10 * time.Second,
		OpenBrowser: func(u string) error {
			go func() {
				if resp, err := browser.Get(u); err == nil { // follows the redirect to the listener
					resp.Body.Close()
				}
			}()
			return nil
		}}
	h := env.handler(t, func(c *HandlerConfig) { c.RedirectURI = redirect; c.Fetcher = l.Fetch })
	s := connectSession(t, h)
	assert.Equal(t, "you are alice", whoami(t, s))
}

func TestPasteFetcher(t *testing.T) {
	var out strings.Builder
	f := PasteFetcher(strings.NewReader("http://127.0.0.1:3001/callback?code=c&state=st&iss=http%3A%2F%2Fas\n"), &out)
	res, err := f(context.Background(), &auth.AuthorizationArgs{URL: "http://as/authorize?state=st"})
	require.NoError(t, err)
	assert.Equal(t, "c", res.Code)
	assert.Equal(t, "http://as", res.Iss)
	assert.Contains(t, out.String(), "http://as/authorize?state=st")

	f = PasteFetcher(strings.NewReader("http://127.0.0.1:3001/callback?code=c&state=old\n"), &out)
	_, err = f(context.Background(), &auth.AuthorizationArgs{URL: "http://as/authorize?state=st"})
	require.ErrorContains(t, err, "state mismatch")

	f = PasteFetcher(strings.NewReader("not a url\n"), &out)
	_, err = f(context.Background(), &auth.AuthorizationArgs{URL: "http://as/authorize?state=st"})
	require.Error(t, err)

	f = PasteFetcher(strings.NewReader(""), &out)
	_, err = f(context.Background(), &auth.AuthorizationArgs{URL: "http://as/authorize?state=st"})
	require.Error(t, err, "EOF is an error, not an empty code")
}

func TestHeadlessFetcherHTMLInvalidClient(t *testing.T) {
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(400)
		_, _ = w.Write([]byte("<p><strong>invalid_client</strong>: unknown client</p>"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, err = HeadlessFetcher(http.DefaultClient, testRedirect)(context.Background(),
		&auth.AuthorizationArgs{URL: "http://" + ln.Addr().String() + "/authorize?state=s"})
	assert.True(t, isInvalidClient(err))
}

func TestLoopbackFailurePageNamesTheErrorEscaped(t *testing.T) {
	results := make(chan callbackResult, 1)
	h := callbackHandler("/callback", "st", results)
	q := url.Values{"state": {"st"}, "error": {"access_denied"},
		"error_description": {`<script>alert("x")</script> & more`}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?"+q.Encode(), nil))

	assert.Equal(t, http.StatusBadRequest, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, body, "access_denied")
	assert.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more")
	assert.NotContains(t, body, "<script>", "the description comes from the URL: it must be escaped")
	r := <-results
	var ae *AuthorizationError
	require.ErrorAs(t, r.err, &ae)
	assert.Equal(t, "access_denied", ae.Code)

	// A callback with neither code nor error still says what was wrong.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?state=st", nil))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "invalid_response")
	assert.Contains(t, rec.Body.String(), "no code")
}
