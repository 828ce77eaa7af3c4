package metrics

import "net/http"

// CountJWKSFetches wraps the transport the MCP server gives its JWKS client
// (keyfunc.Override{Client: &http.Client{Transport: ...}}) so every fetch,
// periodic or triggered by an unknown kid, increments JWKSRefreshes. Counting
// on the wire rather than in the caller is what makes the count trustworthy:
// it sees the library's own refresh goroutine too. A nil base means
// http.DefaultTransport.
func (m *Metrics) CountJWKSFetches(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return countingTransport{base: base, m: m}
}

type countingTransport struct {
	base http.RoundTripper
	m    *Metrics
}

// RoundTrip implements http.RoundTripper.
func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	outcome := OutcomeOK
	if err != nil || resp.StatusCode != http.StatusOK {
		outcome = OutcomeError
	}
	t.m.JWKSRefreshes.WithLabelValues(outcome).Inc()
	return resp, err
}
