package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
	resp, err = c.Post(srv2.URL, "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, n2.Load(), "a POST (e.g. a refresh) is never replayed")
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
