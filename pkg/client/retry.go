package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
)

// RetryTransport retries idempotent requests that failed for a reason that
// may pass: a network error, a 5xx or a 429. A POST to the token endpoint
// (marked with WithTokenEndpoint) is retried only when the server answered
// 5xx or 429, never after a network error (see retryPolicy). Other
// non-idempotent requests (an MCP message, a registration) and 4xx answers
// are never retried. The delay grows exponentially with full jitter, is
// bounded by MaxDelay, and a Retry-After header is honoured (RFC 9110
// §10.2.3) unless it asks for longer than MaxRetryAfter, in which case the
// answer is returned as is.
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
	policy := retryPolicyFor(req)
	if policy == retryNever {
		return base.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			// The first attempt consumed the body: send a fresh copy,
			// on a clone (a RoundTripper must not modify its request).
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replay request body: %w", err)
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp, err := base.RoundTrip(req)
		if attempt >= t.MaxRetries || !retryable(req.Context(), resp, err, policy) {
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

// retryPolicy says when a request may be sent again.
type retryPolicy int

const (
	// retryNever: not idempotent (an MCP JSON-RPC POST, a registration).
	retryNever retryPolicy = iota
	// retryAlways: idempotent, retried after a network error, a 5xx or a 429.
	retryAlways
	// retryOnAnswer: a token request (RFC 6749 §3.2), retried only after a
	// 5xx or 429 answer. That answer is an error response, so the
	// authorization server issued no token (RFC 6749 §5.2): in particular
	// a refresh it answered with an error rotated nothing, and sending the
	// same refresh token again is exactly what the client may do. After a
	// network error we cannot know whether the server processed the
	// request: a refresh may have rotated the token and a replay would be
	// refresh-token reuse (RFC 9700 §4.14.2), which revokes the family.
	retryOnAnswer
)

func retryPolicyFor(req *http.Request) retryPolicy {
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.GetBody == nil {
		return retryNever // the body could not be sent twice
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return retryAlways
	case http.MethodPost:
		if isTokenRequest(req) {
			return retryOnAnswer
		}
	}
	if req.Header.Get("Idempotency-Key") != "" {
		return retryAlways
	}
	return retryNever
}

func retryable(ctx context.Context, resp *http.Response, err error, policy retryPolicy) bool {
	if err != nil {
		// A cancelled or expired context is the caller's decision, not a
		// transient failure.
		return policy == retryAlways && ctx.Err() == nil && !errors.Is(err, context.Canceled)
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// tokenEndpointKey is the context key of WithTokenEndpoint.
type tokenEndpointKey struct{}

// WithTokenEndpoint returns a context in which a POST to endpoint (the
// authorization server's token endpoint) is a token request, which the
// RetryTransport retries after a 5xx or 429 answer. Only that exact URL is
// marked: the same context also carries the registration POST and, in the
// MCP client, JSON-RPC POSTs, which are never retried.
func WithTokenEndpoint(ctx context.Context, endpoint string) context.Context {
	if endpoint == "" {
		return ctx
	}
	return context.WithValue(ctx, tokenEndpointKey{}, endpoint)
}

func isTokenRequest(req *http.Request) bool {
	ep, _ := req.Context().Value(tokenEndpointKey{}).(string)
	if ep == "" {
		return false
	}
	u, err := url.Parse(ep)
	return err == nil && u.String() == req.URL.String()
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
// Both send the request id of each request's context (requestid.NewContext)
// as X-Request-Id, the same on every retry of a request.
func NewHTTPClients(timeout time.Duration, maxRetries int) (oauthClient, mcpClient *http.Client) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = timeout
	base.TLSHandshakeTimeout = min(timeout, 10*time.Second)
	rt := &requestid.Transport{Base: NewRetryTransport(base, maxRetries)}
	return &http.Client{Timeout: timeout, Transport: rt}, &http.Client{Transport: rt}
}
