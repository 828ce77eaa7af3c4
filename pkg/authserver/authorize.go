package authserver

// This file implements the authorization endpoint: the authorization code
// grant's first leg (RFC 6749 §4.1.1-§4.1.2) with PKCE, S256 only (RFC 7636
// §4.3; OAuth 2.1 requires PKCE for every client), the iss response
// parameter (RFC 9207 §2) and resource indicators (RFC 8707 §2).

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

// Limits on parameters that end up stored or echoed.
const (
	maxStateLen = 2048
	maxNonceLen = 512
)

// authorizeRequest is the parsed query of GET /authorize.
type authorizeRequest struct {
	ClientID            string
	RedirectURI         string
	ResponseType        string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	Resource            string
	ResponseMode        string
	Nonce               string
	LoginHint           string
	// Duplicated names the parameters given more than once.
	Duplicated []string
}

// parseAuthorizeQuery parses the raw query of an authorization request.
// Only an unparseable query is an error here; duplicates are reported in
// Duplicated because whether they can be redirected depends on which.
func parseAuthorizeQuery(raw string) (authorizeRequest, error) {
	return authorizeRequestFrom(parseParams(raw))
}

// authorizeRequestFrom builds the request from parsed parameters.
func authorizeRequestFrom(p params, dups []string, err error) (authorizeRequest, error) {
	if err != nil {
		return authorizeRequest{}, err
	}
	return authorizeRequest{
		ClientID:            p.get("client_id"),
		RedirectURI:         p.get("redirect_uri"),
		ResponseType:        p.get("response_type"),
		Scope:               p.get("scope"),
		State:               p.get("state"),
		CodeChallenge:       p.get("code_challenge"),
		CodeChallengeMethod: p.get("code_challenge_method"),
		Resource:            p.get("resource"),
		ResponseMode:        p.get("response_mode"),
		Nonce:               p.get("nonce"),
		LoginHint:           p.get("login_hint"),
		Duplicated:          dups,
	}, nil
}

// authorization is a validated authorization request, ready for consent.
type authorization struct {
	Client      store.Client
	RedirectURI string
	Scope       string
	Request     authorizeRequest
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	req, err := authorizeRequestFrom(queryParams(r))
	if err != nil {
		s.writeErrorPage(w, err)
		return
	}
	client, redirectURI, err := s.checkClientAndRedirect(r.Context(), req)
	if err != nil {
		// Never redirect to a URI that is not known to be the client's.
		s.writeErrorPage(w, err)
		return
	}
	scope, err := s.validateAuthorize(req, client)
	if err != nil {
		s.redirectError(w, r, redirectURI, req.State, err)
		return
	}
	az := authorization{Client: client, RedirectURI: redirectURI, Scope: scope, Request: req}
	if s.takeDenyNext() {
		s.redirectError(w, r, redirectURI, req.State, newError(ErrAccessDenied, "login denied"))
		return
	}
	if !s.cfg.Mock.AutoApprove {
		s.showConsent(w, r, az)
		return
	}
	user, ok := s.autoApproveUser(req.LoginHint)
	if !ok {
		s.redirectError(w, r, redirectURI, req.State, newError(ErrAccessDenied, "unknown login_hint"))
		return
	}
	s.approve(w, r, az, user.Subject, userClaims(user))
}

// checkClientAndRedirect establishes the two facts an error redirect needs:
// the client exists and the redirect URI is registered for it.
func (s *Server) checkClientAndRedirect(ctx context.Context, req authorizeRequest) (store.Client, string, error) {
	if slices.Contains(req.Duplicated, "client_id") || slices.Contains(req.Duplicated, "redirect_uri") {
		return store.Client{}, "", errInvalidRequest("client_id and redirect_uri must be given once")
	}
	if req.ClientID == "" {
		return store.Client{}, "", errInvalidRequest("client_id is required")
	}
	client, err := s.lookupClient(ctx, req.ClientID)
	if errors.Is(err, errUnknownClient) {
		return store.Client{}, "", newError(ErrInvalidClient, "unknown client")
	}
	if err != nil {
		return store.Client{}, "", err
	}
	redirectURI := req.RedirectURI
	if redirectURI == "" {
		// RFC 6749 §3.1.2.3: may be omitted only when exactly one is registered.
		if len(client.RedirectURIs) != 1 {
			return store.Client{}, "", errInvalidRequest("redirect_uri is required")
		}
		redirectURI = client.RedirectURIs[0]
	}
	if !redirectURIMatches(client.RedirectURIs, redirectURI) {
		return store.Client{}, "", errInvalidRequest("redirect_uri is not registered for this client")
	}
	return client, redirectURI, nil
}

// validateAuthorize checks everything that may be reported to the client by
// redirect, and returns the granted scope.
func (s *Server) validateAuthorize(req authorizeRequest, client store.Client) (string, error) {
	if slices.Contains(req.Duplicated, "resource") {
		return "", newError(ErrInvalidTarget, "only one resource per request is supported")
	}
	if len(req.Duplicated) > 0 {
		return "", errInvalidRequest("parameter " + req.Duplicated[0] + " given more than once")
	}
	switch req.ResponseType {
	case "":
		return "", errInvalidRequest("response_type is required")
	case "code":
	default:
		return "", newError(ErrUnsupportedResponseType, "only response_type=code is supported")
	}
	if req.ResponseMode != "" && req.ResponseMode != "query" {
		return "", errInvalidRequest("only response_mode=query is supported")
	}
	if !slices.Contains(client.GrantTypes, GrantAuthorizationCode) {
		return "", newError(ErrUnauthorizedClient, "client may not use the authorization code grant")
	}
	if err := validateChallenge(req.CodeChallenge, req.CodeChallengeMethod); err != nil {
		return "", err
	}
	if len(req.State) > maxStateLen || len(req.Nonce) > maxNonceLen {
		return "", errInvalidRequest("state or nonce too long")
	}
	scope, err := resolveScope(req.Scope, client.Scopes)
	if err != nil {
		return "", err
	}
	return scope, s.checkResource(req.Resource)
}

// validateChallenge requires PKCE with S256: a missing method means plain
// (RFC 7636 §4.3), which OAuth 2.1 and the MCP spec refuse.
func validateChallenge(challenge, method string) error {
	if challenge == "" {
		return errInvalidRequest("code_challenge is required (PKCE S256)")
	}
	if method != "S256" {
		return errInvalidRequest("code_challenge_method must be S256")
	}
	// An S256 challenge is the base64url SHA-256 of the verifier: 43 chars.
	if len(challenge) != 43 || !isBase64URL(challenge) {
		return errInvalidRequest("code_challenge is not a base64url SHA-256 value")
	}
	return nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// autoApproveUser picks the user for mock.auto_approve: the login_hint
// (subject or email) or the default user.
func (s *Server) autoApproveUser(hint string) (User, bool) {
	if hint != "" {
		return s.userByHint(hint)
	}
	return s.user(s.cfg.Mock.DefaultUser)
}

func userClaims(u User) map[string]any {
	claims := map[string]any{}
	if u.Email != "" {
		claims["email"] = u.Email
	}
	if u.Name != "" {
		claims["name"] = u.Name
	}
	return claims
}

// approve issues a code for subject and sends it to the redirect URI with
// state and iss.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, az authorization, subject string, claims map[string]any) {
	code, err := s.issueCode(r.Context(), az, subject, claims)
	if err != nil {
		s.redirectError(w, r, az.RedirectURI, az.Request.State, err)
		return
	}
	q := url.Values{"code": {code}, "iss": {s.issuer}}
	if az.Request.State != "" {
		q.Set("state", az.Request.State)
	}
	s.log.InfoContext(r.Context(), "authorization approved", "client_id", az.Client.ID, "sub", subject, "scope", az.Scope, "code_hash", hashPrefix(code))
	http.Redirect(w, r, appendQuery(az.RedirectURI, q), redirectStatus(r))
}

// redirectStatus is the status of a redirect back to the client. After the
// consent form's POST it is 303 See Other, so the browser GETs the redirect
// URI: with 307 it would re-POST the form (user choice, CSRF token) to the
// client, and 302 leaves the method to the browser (RFC 9700 §4.12,
// RFC 9110 §15.4.4). The GET authorization request keeps the customary 302.
func redirectStatus(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// issueCode stores a new single-use code, bound to the client, redirect
// URI, PKCE challenge, resource and user, and returns it.
func (s *Server) issueCode(ctx context.Context, az authorization, subject string, claims map[string]any) (string, error) {
	s.maybePrune(ctx)
	code := randomToken()
	now := s.now()
	err := s.store.PutCode(ctx, store.Code{
		Hash:     hashToken(code),
		ClientID: az.Client.ID,
		// As given (possibly empty): the token request must repeat it exactly.
		RedirectURI: az.Request.RedirectURI,
		Challenge:   az.Request.CodeChallenge,
		Resource:    az.Request.Resource,
		Scope:       az.Scope,
		Subject:     subject,
		Nonce:       az.Request.Nonce,
		Claims:      claims,
		AuthTime:    now,
		ExpiresAt:   now.Add(s.lifetimesNow().CodeTTL),
		FamilyID:    randomID(),
	})
	if errors.Is(err, store.ErrFull) {
		return "", newError(ErrTemporarilyUnavailable, "too many pending codes")
	}
	if err != nil {
		return "", err
	}
	return code, nil
}
