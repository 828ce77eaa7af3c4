package authserver

// This file maps errors to the wire, in one place: RFC 6749 §5.2 JSON error
// responses for the token-style endpoints, RFC 6749 §4.1.2.1 error redirects
// for /authorize (with iss, RFC 9207), and HTML error pages for the cases
// where redirecting would be unsafe (unknown client or redirect URI).

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
)

// OAuth error codes (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2; RFC 8707 §2;
// RFC 6750 §3.1).
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrServerError             = "server_error"
	ErrInvalidTarget           = "invalid_target"
	ErrInvalidRedirectURI      = "invalid_redirect_uri"
	ErrInvalidClientMetadata   = "invalid_client_metadata"
	ErrInvalidToken            = "invalid_token"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
)

// Reasons an authentication failure is counted under (the "reason" label of
// metrics.AuthFailures) besides the error codes invalid_client (client
// authentication failed), invalid_grant (a bad, expired or foreign code or
// refresh token) and invalid_token (the bearer token at /userinfo, the
// initial access token at /register), which count under their own names.
// The set is fixed here, never taken from request input, so the number of
// series stays bounded.
const (
	reasonRefreshReuse = "refresh_reuse" // a rotated refresh token presented again
	reasonCodeReplay   = "code_replay"   // an authorization code redeemed twice
	reasonCSRF         = "csrf"          // consent form without the matching CSRF token
)

// oauthError is an error with its wire form. Handlers return it; the
// writers below turn it into a response.
type oauthError struct {
	Code        string
	Description string
	Status      int
	// reason, when set, is the AuthFailures label to count this error
	// under instead of the one its Code implies (see failureReason).
	reason string
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

// withReason marks e as an authentication failure counted under reason
// (one of the reason* constants): for the attacks detected at one site
// (refresh reuse, code replay, CSRF), whose wire code is generic.
func (e *oauthError) withReason(reason string) *oauthError {
	e.reason = reason
	return e
}

// failureReason is the AuthFailures label of e, or "" when e is not an
// authentication failure (a malformed request, an unsupported grant).
func (e *oauthError) failureReason() string {
	if e.reason != "" {
		return e.reason
	}
	switch e.Code {
	case ErrInvalidClient, ErrInvalidGrant, ErrInvalidToken:
		return e.Code
	}
	return ""
}

// countFailure records oe in metrics.AuthFailures when it is an
// authentication failure. Called by the error writers below, the one place
// every error response passes through, so no handler can forget it.
func (s *Server) countFailure(oe *oauthError) {
	if s.cfg.Metrics == nil {
		return
	}
	if reason := oe.failureReason(); reason != "" {
		s.cfg.Metrics.AuthFailures.WithLabelValues(reason).Inc()
	}
}

func newError(code, description string) *oauthError {
	status := http.StatusBadRequest
	switch code {
	case ErrInvalidClient, ErrInvalidToken:
		status = http.StatusUnauthorized
	case ErrServerError:
		status = http.StatusInternalServerError
	case ErrTemporarilyUnavailable:
		status = http.StatusServiceUnavailable
	}
	return &oauthError{Code: code, Description: description, Status: status}
}

func errInvalidRequest(desc string) *oauthError { return newError(ErrInvalidRequest, desc) }

// asOAuthError converts any error into an oauthError; unexpected errors
// become server_error without detail so internals never leak.
func asOAuthError(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	return newError(ErrServerError, "internal error")
}

// writeJSON writes v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeNoStoreJSON writes a response that carries credentials: RFC 6749
// §5.1 forbids caching it.
func writeNoStoreJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}

type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// writeError writes err as an RFC 6749 §5.2 JSON error, logging the
// unexpected ones.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	oe := asOAuthError(err)
	if oe.Code == ErrServerError {
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	s.countFailure(oe)
	if oe.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", s.challenge(r, oe.Code))
	}
	writeNoStoreJSON(w, oe.Status, errorBody{Error: oe.Code, ErrorDescription: safeDescription(oe.Description)})
}

// challenge is the WWW-Authenticate that every 401 must carry (RFC 9110
// §15.5.2). invalid_client (/token, /introspect, /revoke) is answered with
// Basic whatever method the client tried: RFC 6749 §5.2 allows 401 for any
// failed client authentication, and Basic is the scheme a client can retry
// with. invalid_token (the initial access token at /register, a bearer
// token at /userinfo) is answered with Bearer, with the error code only
// when a token was sent (RFC 6750 §3.1).
func (s *Server) challenge(r *http.Request, code string) string {
	if code != ErrInvalidToken {
		return `Basic realm="` + s.issuer + `", charset="UTF-8"`
	}
	if _, sent := bearerToken(r); !sent {
		return `Bearer realm="` + s.issuer + `"`
	}
	return `Bearer realm="` + s.issuer + `", error="invalid_token"`
}

// maxDescriptionLen bounds error_description: descriptions may quote
// request input (a parameter name), which must not make a response or a
// redirect URL arbitrarily long.
const maxDescriptionLen = 200

// safeDescription makes an error_description fit RFC 6749 §4.1.2.1 and
// §5.2: only %x20-21 / %x23-5B / %x5D-7E, so a quoted parameter name with
// a quote, a backslash, a control character or non-ASCII cannot break a
// client's parser. Every other byte becomes '?'; the result is bounded.
func safeDescription(desc string) string {
	if len(desc) > maxDescriptionLen {
		desc = desc[:maxDescriptionLen]
	}
	b := []byte(desc)
	for i, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// redirectError sends an authorization error back to a redirect URI that is
// already known to be registered (RFC 6749 §4.1.2.1), with state and iss
// (RFC 9207 §2: iss is in error responses too).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, err error) {
	oe := asOAuthError(err)
	if oe.Code == ErrServerError {
		s.log.ErrorContext(r.Context(), "authorization failed", "err", err)
	}
	s.countFailure(oe)
	q := url.Values{"error": {oe.Code}, "iss": {s.issuer}}
	if oe.Description != "" {
		q.Set("error_description", safeDescription(oe.Description))
	}
	if state != "" {
		q.Set("state", state)
	}
	http.Redirect(w, r, appendQuery(redirectURI, q), redirectStatus(r))
}

// appendQuery adds q to the query of a registered redirect URI, keeping the
// query it already has (RFC 6749 §3.1.2).
func appendQuery(raw string, q url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	existing := u.Query()
	for k, vs := range q {
		existing[k] = vs
	}
	u.RawQuery = existing.Encode()
	return u.String()
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorization error</title></head>
<body><h1>Authorization error</h1><p><strong>{{.Code}}</strong>: {{.Description}}</p>
<p>For your safety this error is shown here and not sent back to the application. Start the login again from the application.</p>
</body></html>`))

// writeErrorPage shows an error to the user instead of redirecting: used
// when the client or the redirect URI cannot be trusted (RFC 6749 §4.1.2.1),
// so the server never becomes an open redirector.
func (s *Server) writeErrorPage(w http.ResponseWriter, err error) {
	oe := asOAuthError(err)
	s.countFailure(oe)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	status := oe.Status
	if status < 400 || status == http.StatusUnauthorized {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_ = errorPage.Execute(w, oe)
}
