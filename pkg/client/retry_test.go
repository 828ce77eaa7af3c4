package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scripted answers each request with the next status (the last repeats).
func scripted(t *testing.T, statuses []int, header http.Header) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func testTransport(sleeps *[]time.Duration) *RetryTransport {
	rt := NewRetryTransport(nil, 3)
	rt.Jitter = func() float64 { return 0.999 }
	rt.Sleep = func(_ context.Context, d time.Duration) error { *sleeps = append(*sleeps, d); return nil }
	return rt
}

func TestRetryBackoffIsBoundedAndExponential(t *testing.T) {
	srv, n := scripted(t, []int{503}, nil)
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
	assert.EqualValues(t, 4, n.Load(), "1 attempt + MaxRetries")
	require.Len(t, sleeps, 3)
	for i := 1; i < len(sleeps); i++ {
		assert.Greater(t, sleeps[i], sleeps[i-1])
	}
	for _, d := range sleeps {
		assert.LessOrEqual(t, d, 5*time.Second)
	}
}

func TestRetryRecoversAndHonoursRetryAfter(t *testing.T) {
	srv, n := scripted(t, []int{429, 200}, http.Header{"Retry-After": {"2"}})
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.EqualValues(t, 2, n.Load())
	assert.Equal(t, []time.Duration{2 * time.Second}, sleeps)
}

func TestRetryAfterTooLongGivesUp(t *testing.T) {
	srv, n := scripted(t, []int{503}, http.Header{"Retry-After": {"3600"}})
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, n.Load())
	assert.Empty(t, sleeps)
}

func TestNoRetryOn4xxOrPost(t *testing.T) {
	srv, n := scripted(t, []int{404}, nil)
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, n.Load())

	srv2, n2 := scripted(t, []int{503}, nil)
	resp, err = c.Post(srv2.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, n2.Load(), "a POST that is not a token request (e.g. MCP JSON-RPC) is never replayed")

	// A POST to another URL than the marked token endpoint (e.g. the
	// registration endpoint, in the same login context) is not retried.
	srv3, n3 := scripted(t, []int{503}, nil)
	ctx := WithTokenEndpoint(context.Background(), srv3.URL+"/token")
	resp, err = postForm(ctx, c, srv3.URL+"/register", "{}")
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, n3.Load())

	// A 4xx from the token endpoint (invalid_grant, invalid_client) is final.
	srv4, n4 := scripted(t, []int{400}, nil)
	resp, err = postForm(WithTokenEndpoint(context.Background(), srv4.URL+"/token"), c, srv4.URL+"/token", "grant_type=refresh_token")
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, n4.Load())
	assert.Empty(t, sleeps)
}

func postForm(ctx context.Context, c *http.Client, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Do(req)
}

// formRecorder answers each request with the next status and records the
// bodies it received.
func formRecorder(t *testing.T, statuses []int, header http.Header) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<10))
		mu.Lock()
		bodies = append(bodies, string(b))
		i := len(bodies) - 1
		mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
	}))
	t.Cleanup(srv.Close)
	return srv, &bodies
}

func TestTokenRequestRetriedOn5xxWithBodyReplayed(t *testing.T) {
	srv, bodies := formRecorder(t, []int{500, 200}, nil)
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	ctx := WithTokenEndpoint(context.Background(), srv.URL+"/token")
	form := "grant_type=refresh_token&refresh_token=r1&client_id=c"
	resp, err := postForm(ctx, c, srv.URL+"/token", form)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{form, form}, *bodies, "the same form is sent again, whole")
	assert.Len(t, sleeps, 1)
}

func TestTokenRequestRetriesAreBoundedAndHonourRetryAfter(t *testing.T) {
	srv, bodies := formRecorder(t, []int{429}, http.Header{"Retry-After": {"1"}})
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	ctx := WithTokenEndpoint(context.Background(), srv.URL+"/token")
	resp, err := postForm(ctx, c, srv.URL+"/token", "grant_type=authorization_code&code=x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 429, resp.StatusCode, "the last answer is returned once the retries are spent")
	assert.Len(t, *bodies, 4, "1 attempt + MaxRetries")
	assert.Equal(t, []time.Duration{time.Second, time.Second, time.Second}, sleeps)
}

func TestTokenRequestNotRetriedAfterNetworkError(t *testing.T) {
	// The server reads the whole request, then drops the connection without
	// answering: it may have rotated the refresh token, so no replay.
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	ctx := WithTokenEndpoint(context.Background(), srv.URL+"/token")
	_, err := postForm(ctx, c, srv.URL+"/token", "grant_type=refresh_token&refresh_token=r1")
	require.Error(t, err)
	assert.EqualValues(t, 1, n.Load())
	assert.Empty(t, sleeps)
}

func TestRetryNetworkError(t *testing.T) {
	srv, _ := scripted(t, []int{200}, nil)
	url := srv.URL
	srv.Close() // nothing listens any more
	var sleeps []time.Duration
	c := &http.Client{Transport: testTransport(&sleeps)}
	_, err := c.Get(url)
	require.Error(t, err)
	assert.Len(t, sleeps, 3)
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	srv, n := scripted(t, []int{503}, nil)
	rt := NewRetryTransport(nil, 5)
	rt.Sleep = func(context.Context, time.Duration) error { return context.Canceled }
	c := &http.Client{Transport: rt}
	_, err := c.Get(srv.URL)
	require.True(t, errors.Is(err, context.Canceled))
	assert.EqualValues(t, 1, n.Load())
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rt := &RetryTransport{Now: func() time.Time { return now }}
	resp := &http.Response{Header: http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}}
	d, ok := rt.retryAfter(resp)
	assert.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
}
