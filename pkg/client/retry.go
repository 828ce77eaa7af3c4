package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// RetryTransport retries idempotent requests that failed for a reason that
// may pass: a network error, a 5xx or a 429. Non-idempotent requests (POST:
// a token exchange, a refresh that would burn a rotated refresh token, an
// MCP message) and 4xx answers are never retried. The delay grows
// exponentially with full jitter, is bounded by MaxDelay, and a Retry-After
// header is honoured (RFC 9110 §10.2.3) unless it asks for longer than
// MaxRetryAfter, in which case the answer is returned as is.
type RetryTransport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
	// MaxRetries bounds the retries after the first attempt.
	MaxRetries int
	// BaseDelay is the delay before the first retry (before jitter).
	BaseDelay time.Duration
	// MaxDelay caps each computed delay.
	MaxDelay time.Duration
	// MaxRetryAfter caps how long a Retry-After may make us wait.
	MaxRetryAfter time.Duration
	// Sleep waits for d or until ctx ends; injectable so tests do not sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0,1); injectable for deterministic tests.
	Jitter func() float64
	// Now is the clock used to read an HTTP-date Retry-After.
	Now func() time.Time
}

// NewRetryTransport returns a RetryTransport with the project's defaults.
func NewRetryTransport(base http.RoundTripper, maxRetries int) *RetryTransport {
	return &RetryTransport{
		Base:          base,
		MaxRetries:    maxRetries,
		BaseDelay:     200 * time.Millisecond,
		MaxDelay:      5 * time.Second,
		MaxRetryAfter: 30 * time.Second,
	}
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if !isIdempotent(req) {
		return base.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, err := base.RoundTrip(req)
		if attempt >= t.MaxRetries || !retryable(req.Context(), resp, err) {
			return resp, err
		}
		delay := t.backoff(attempt)
		if resp != nil {
			if ra, ok := t.retryAfter(resp); ok {
				if ra > t.MaxRetryAfter {
					// Waiting less than the server asked is rude and
					// pointless; waiting longer stalls the user: give up.
					return resp, nil
				}
				delay = ra
			}
			drain(resp)
		}
		if err := t.sleep(req.Context(), delay); err != nil {
			return nil, err
		}
	}
}

func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	}
	return req.Header.Get("Idempotency-Key") != "" && req.GetBody != nil
}

func retryable(ctx context.Context, resp *http.Response, err error) bool {
	if err != nil {
		// A cancelled or expired context is the caller's decision, not a
		// transient failure.
		return ctx.Err() == nil && !errors.Is(err, context.Canceled)
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// backoff is exponential with full jitter ("AWS full jitter"), capped.
func (t *RetryTransport) backoff(attempt int) time.Duration {
	d := t.BaseDelay << min(attempt, 20)
	if d > t.MaxDelay || d <= 0 {
		d = t.MaxDelay
	}
	j := rand.Float64
	if t.Jitter != nil {
		j = t.Jitter
	}
	return time.Duration(float64(d) * j())
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func (t *RetryTransport) retryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	when, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	return max(when.Sub(now()), 0), true
}

func (t *RetryTransport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// drain reads a little of a discarded body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// NewHTTPClients returns the client used for OAuth requests (an overall
// timeout per request) and the one used for MCP (no overall timeout, since a
// Streamable HTTP response may be a long SSE stream, but bounded dial, TLS
// and response-header waits; each MCP call also carries a context deadline).
func NewHTTPClients(timeout time.Duration, maxRetries int) (oauthClient, mcpClient *http.Client) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = timeout
	base.TLSHandshakeTimeout = min(timeout, 10*time.Second)
	rt := NewRetryTransport(base, maxRetries)
	return &http.Client{Timeout: timeout, Transport: rt}, &http.Client{Transport: rt}
}
