package mcpserver

// This file is the resource server's request pipeline (RFC 6750 bearer
// usage, RFC 9728 §5.1 challenges, MCP authorization "Access Token Usage"
// and "Scope Challenge Handling"):
//
//   - tokens come only from the Authorization header (RFC 6750 §2.1); a
//     token in the query string is refused (§2.3 is not supported);
//   - no token: 401 with WWW-Authenticate: Bearer resource_metadata=...;
//     a bad token: the same with error="invalid_token" (§3.1);
//   - no keys loaded yet: 503 with Retry-After;
//   - a token without auth.required_scope, or a tools/call without every
//     scope of its tool: 403 error="insufficient_scope" with scope= listing
//     every scope the operation needs, so a client can step up;
//   - the verified caller reaches the SDK as auth.TokenInfo with UserID set
//     to the token's subject, which binds stateful sessions to that user.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

type ctxKey int

const stateKey ctxKey = iota

// requestState is what the pipeline learns about one request, for the
// audit record and for later stages.
type requestState struct {
	id        string
	start     time.Time // monotonic, for the duration
	identity  *Identity
	tokenInfo *auth.TokenInfo
	rpc       *rpcSummary
	outcome   string // set when a stage refuses the request
	reason    string
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey).(*requestState)
	return st
}

// bearerToken extracts the access token. found is false when the request
// carries none at all; a malformed Authorization header is a token that
// fails verification.
func (s *Server) bearerToken(r *http.Request) (token string, found bool) {
	// Indexed directly: the key is canonical already, and Values would
	// canonicalize it again on every request.
	values := r.Header["Authorization"]
	if len(values) == 0 && s.cfg.Auth.AcceptSessionTokenHeader {
		if t := strings.TrimSpace(r.Header.Get("X-Session-Token")); t != "" {
			return t, true
		}
	}
	if len(values) == 0 {
		return "", false
	}
	scheme, credentials, n := authorizationFields(values[0])
	if len(values) > 1 || n != 2 || !strings.EqualFold(scheme, "Bearer") {
		if n > 0 && !strings.EqualFold(scheme, "Bearer") && len(values) == 1 {
			return "", false // another scheme: no bearer token was sent (RFC 6750 §3.1)
		}
		return "", true
	}
	return credentials, true
}

// authorizationFields splits an Authorization header value as strings.Fields
// would, returning the first two fields and how many there are (counting
// stops at 3). It runs on every request over a header of about a kilobyte:
// the usual "Bearer <token>" (one space, visible ASCII) is split in place
// without allocating; anything else goes through strings.Fields, so the
// result is the same for every input.
func authorizationFields(v string) (first, second string, n int) {
	if sp := strings.IndexByte(v, ' '); sp > 0 && sp < len(v)-1 && visibleASCII(v[:sp]) && visibleASCII(v[sp+1:]) {
		return v[:sp], v[sp+1:], 2
	}
	fields := strings.Fields(v)
	n = min(len(fields), 3)
	if n > 0 {
		first = fields[0]
	}
	if n > 1 {
		second = fields[1]
	}
	return first, second, n
}

// visibleASCII reports whether s holds only ASCII bytes above the space:
// no whitespace strings.Fields would split at, nothing non-ASCII. It runs
// over the whole token on every request, so it tests 32 bytes a step: four
// words whose verdicts are ORed and looked at once (each word's is exact,
// so their union is), which halves the instructions of a word at a time.
func visibleASCII(s string) bool {
	for len(s) >= 32 {
		if visibleASCIIBits(load64(s[0:8]), load64(s[8:16]), load64(s[16:24]), load64(s[24:32])) != 0 {
			return false
		}
		s = s[32:]
	}
	for len(s) >= 8 {
		if !visibleASCII8(load64(s)) {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// load64 reads the first eight bytes of s as a little-endian word; the
// compiler turns the eight loads into one.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// visibleASCIIBits is nonzero when any byte of the four words is outside
// 0x21..0x7f: visibleASCII8's test of each, ORed.
func visibleASCIIBits(a, b, c, d uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return ((a-ones*0x21)&^a | a | (b-ones*0x21)&^b | b |
		(c-ones*0x21)&^c | c | (d-ones*0x21)&^d | d) & highs
}

// visibleASCII8 reports whether every byte of w is in 0x21..0x7f. A byte b
// below 0x21 makes b - 0x21 set its top bit while b's own top bit is clear;
// a byte of 0x80 or more has its top bit set. A borrow can pass into the
// next byte only from a byte already below 0x21, so a word without such a
// byte raises no false alarm (the "hasless" test of Hacker's Delight 6-1;
// TestVisibleASCII8Exhaustive checks it against the bytewise test).
func visibleASCII8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (w - ones*0x21) &^ w & highs
	return (below | w&highs) == 0
}

// authenticate verifies the caller's token, or answers the request and
// returns nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, challengeScopes []string) *Identity {
	st := stateFrom(r.Context())
	token, found := s.bearerToken(r)
	// Query() parses into a fresh map: only pay for it when there is a query.
	if r.URL.RawQuery != "" && r.URL.Query().Has("access_token") {
		// RFC 6750 §2.3 (URI query parameter) is not supported: tokens in
		// URLs end up in logs and Referer headers. Alone, it counts as no
		// credentials (401 and a fresh challenge); beside a header token it
		// is two methods at once, which §2 forbids (400 invalid_request).
		if found {
			s.refuse(w, r, http.StatusBadRequest, "invalid_request", "more than one method used to send the access token", challengeScopes)
			return nil
		}
		st.reason = "access token in the query string refused"
		s.metrics.AuthFailures.WithLabelValues("query_token").Inc()
		w.Header().Set("WWW-Authenticate", s.challenge("", "", challengeScopes))
		writeOAuthError(w, http.StatusUnauthorized, "", "access tokens are accepted only in the Authorization header")
		return nil
	}
	if !found {
		// RFC 6750 §3.1: no error code when the request has no credentials.
		s.metrics.AuthFailures.WithLabelValues("missing_token").Inc()
		s.refuse(w, r, http.StatusUnauthorized, "", "no bearer token", challengeScopes)
		return nil
	}
	if token == "" {
		s.metrics.AuthFailures.WithLabelValues("malformed").Inc()
		s.refuse(w, r, http.StatusUnauthorized, "invalid_token", "malformed Authorization header", challengeScopes)
		return nil
	}
	id, err := s.verifier.Verify(r.Context(), token)
	switch {
	case errors.Is(err, ErrNotReady):
		st.outcome, st.reason = OutcomeError, "authorization server keys not loaded"
		w.Header().Set("Retry-After", "5")
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "token verification is not ready yet")
		return nil
	case err != nil:
		reason, desc := "invalid", "token rejected"
		var te *tokenError
		if errors.As(err, &te) {
			reason, desc = te.reason, te.desc
		}
		s.metrics.AuthFailures.WithLabelValues(reason).Inc()
		s.logger.Debug("token refused", "request_id", st.id, "reason", reason, "error", err)
		s.refuse(w, r, http.StatusUnauthorized, "invalid_token", desc, challengeScopes)
		return nil
	}
	st.identity = id
	return id
}

// refuse answers with an RFC 6750 error and its WWW-Authenticate challenge.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, code, description string, scopes []string) {
	st := stateFrom(r.Context())
	st.reason = description
	if code == "insufficient_scope" {
		s.metrics.AuthFailures.WithLabelValues(code).Inc()
	}
	if code != "" {
		st.reason = code + ": " + description
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden || code != "" {
		w.Header().Set("WWW-Authenticate", s.challenge(code, description, scopes))
	}
	writeOAuthError(w, status, code, description)
}

// challenge builds a Bearer challenge (RFC 6750 §3) carrying this server's
// resource metadata URL (RFC 9728 §5.1).
func (s *Server) challenge(code, description string, scopes []string) string {
	var parts []string
	if code != "" {
		parts = append(parts, fmt.Sprintf("error=%q", code))
		if description != "" {
			parts = append(parts, fmt.Sprintf("error_description=%q", quoteSafe(description)))
		}
	}
	if len(scopes) > 0 {
		parts = append(parts, fmt.Sprintf("scope=%q", strings.Join(scopes, " ")))
	}
	parts = append(parts, fmt.Sprintf("resource_metadata=%q", s.resourceMetadataURL))
	return "Bearer " + strings.Join(parts, ", ")
}

// quoteSafe keeps a description within RFC 6750's error_description
// charset (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, s)
}

// requireMCPAccess protects /mcp: a valid token with auth.required_scope,
// and for tools/call every scope of the tool called.
//
// Every challenge, the 401s included, carries scope= with what this request
// needs: auth.required_scope, plus the scopes of any tool it calls. MCP
// clients take the challenge's scope first and fall back to all of
// scopes_supported only without it (MCP authorization, "Scope Selection
// Strategy"; the Go SDK's AuthorizationCodeHandler does exactly this); the
// fallback would have every client ask for mcp:write and mcp:audit up front,
// so naming the need keeps them at least privilege, and they step up on a
// later 403 insufficient_scope ("Step-Up Authorization Flow").
// One check against the whole need means one step-up, not one per scope.
func (s *Server) requireMCPAccess(next http.Handler) http.Handler {
	base := []string{s.cfg.Auth.RequiredScope}
	bearer := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		// The token was verified below; this hands the result to the SDK,
		// which keeps TokenInfo in the context only through this middleware.
		if st := stateFrom(ctx); st != nil && st.tokenInfo != nil {
			return st.tokenInfo, nil
		}
		return nil, auth.ErrInvalidToken
	}, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: s.resourceMetadataURL, AllowMissingExpiration: true, ClockSkew: s.cfg.Auth.Leeway,
	})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The check runs in its own call and returns before the SDK is
		// called: its locals (about half a kilobyte) do not stay on the
		// goroutine's stack under the SDK's deep JSON decoding, which would
		// make the stack grow (and be copied) on more requests.
		if r = s.checkMCPAccess(w, r, base); r != nil {
			bearer.ServeHTTP(w, r)
		}
	})
}

// checkMCPAccess is requireMCPAccess's check. It returns the request to pass
// on, or nil when it has answered it.
//
//go:noinline
func (s *Server) checkMCPAccess(w http.ResponseWriter, r *http.Request, base []string) *http.Request {
	st := stateFrom(r.Context())
	need := base
	if st.rpc != nil {
		for _, m := range st.rpc.Messages {
			for _, tool := range m.Tools {
				need = addScopes(need, s.scopes.forTool(tool))
			}
		}
	}
	id := s.authenticate(w, r, need)
	if id == nil {
		return nil
	}
	if missing := missingScopes(id.Scopes, need); len(missing) > 0 {
		s.refuse(w, r, http.StatusForbidden, "insufficient_scope", "this call needs "+strings.Join(missing, " "), need)
		return nil
	}
	st.tokenInfo = tokenInfoFor(id)
	return withVerifiedAuthorization(r)
}

// verifiedAuthorization is the Authorization header the SDK's
// RequireBearerToken sees once checkMCPAccess has verified the caller. That
// middleware is the only way to hand the SDK the caller's TokenInfo (it binds
// sessions to TokenInfo.UserID), and it splits the header with strings.Fields
// before asking our callback, which answers from the request state and
// ignores the token: given the real header, it would scan a kilobyte-long
// token once more on every call, for nothing (about a quarter of what
// checking a token cost per call, docs/PERFORMANCE.md). It is not a
// credential: the callback answers only for a request this check has let
// through.
const verifiedAuthorization = "Bearer verified"

// withVerifiedAuthorization puts verifiedAuthorization in r's headers in
// place of the token, however it was sent (Authorization or
// X-Session-Token), and returns r. What the SDK and the tools see of the
// request then holds no bearer token; the caller is in TokenInfo.
//
// It changes r itself rather than a copy: copying the header map and the
// request cost about 3 000 instructions a call, a tenth of what is left of
// the check (docs/PERFORMANCE.md, "Auth overhead"). The request is this
// call's own, and no stage before this one reads the token after it (audit,
// origin, metrics and request ids read other headers; the audit record
// takes the caller from the request state); TestSDKAndToolsNeverSeeTheToken
// checks both what the SDK sees and the audit record.
func withVerifiedAuthorization(r *http.Request) *http.Request {
	delete(r.Header, "X-Session-Token") // canonical, like every key of a server request
	// A slice of its own: a handler writing into it must not reach the
	// next request.
	r.Header["Authorization"] = []string{verifiedAuthorization}
	return r
}

// tokenInfoFor converts an Identity to the SDK's TokenInfo. UserID is what
// the SDK binds sessions to: a session created by one subject answers 403 to
// any other. A verified Identity carries its TokenInfo, built once when the
// token was verified and shared by every request with that token (the SDK
// and the tools only read it), instead of a TokenInfo and its map per call.
func tokenInfoFor(id *Identity) *auth.TokenInfo {
	if id.tokenInfo != nil {
		return id.tokenInfo
	}
	return newTokenInfo(id)
}

// newTokenInfo builds the SDK's TokenInfo of id.
func newTokenInfo(id *Identity) *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes: id.Scopes, Expiration: id.ExpiresAt, UserID: id.Subject,
		Extra: map[string]any{identityExtraKey: id},
	}
}

// withTokenInfo attaches id's TokenInfo to it; verifiers call it before the
// Identity is shared (cached or returned), so it is never written after.
func (id *Identity) withTokenInfo() *Identity {
	id.tokenInfo = newTokenInfo(id)
	return id
}

const identityExtraKey = "identity"

// writeOAuthError writes an RFC 6749 §5.2-style JSON error body.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]string{}
	if code != "" {
		body["error"] = code
	}
	if description != "" {
		body["error_description"] = description
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeJSONRPCError writes a JSON-RPC error response with a null id.
func writeJSONRPCError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": code, "message": message},
	})
}
