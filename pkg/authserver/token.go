package authserver

// This file implements the token endpoint (RFC 6749 §3.2, §5) and two of
// its grants: authorization_code (RFC 6749 §4.1.3, PKCE verification per
// RFC 7636 §4.6, resource binding per RFC 8707 §2.2) and client_credentials
// (RFC 6749 §4.4). The refresh_token grant is in refresh.go.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

// tokenRequest is the parsed form of POST /token.
type tokenRequest struct {
	GrantType    string
	Code         string
	RedirectURI  string
	CodeVerifier string
	RefreshToken string
	Scope        string
	Resource     string
}

// parseTokenForm reads the fields of a token request from its form.
func parseTokenForm(form params) (tokenRequest, error) {
	req := tokenRequest{
		GrantType:    form.get("grant_type"),
		Code:         form.get("code"),
		RedirectURI:  form.get("redirect_uri"),
		CodeVerifier: form.get("code_verifier"),
		RefreshToken: form.get("refresh_token"),
		Scope:        form.get("scope"),
		Resource:     form.get("resource"),
	}
	if req.GrantType == "" {
		return tokenRequest{}, errInvalidRequest("grant_type is required")
	}
	return req, nil
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, grantType, err := s.token(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.stats.countGrant(grantType)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.TokensIssued.WithLabelValues(grantType).Inc()
	}
	writeNoStoreJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request) (tokenResponse, string, error) {
	form, err := readForm(r)
	if err != nil {
		return tokenResponse{}, "", err
	}
	req, err := parseTokenForm(form)
	if err != nil {
		return tokenResponse{}, "", err
	}
	client, err := s.authenticateClient(r, form)
	if err != nil {
		return tokenResponse{}, "", err
	}
	if !slices.Contains(supportedGrants, req.GrantType) {
		return tokenResponse{}, "", newError(ErrUnsupportedGrantType, "unsupported grant_type")
	}
	if !slices.Contains(client.GrantTypes, req.GrantType) {
		return tokenResponse{}, "", newError(ErrUnauthorizedClient, "client may not use grant_type "+req.GrantType)
	}
	ctx := r.Context()
	var resp tokenResponse
	switch req.GrantType {
	case GrantAuthorizationCode:
		resp, err = s.grantAuthorizationCode(ctx, client, req)
	case GrantRefreshToken:
		resp, err = s.grantRefreshToken(ctx, client, req)
	case GrantClientCredentials:
		resp, err = s.grantClientCredentials(ctx, client, req)
	}
	return resp, req.GrantType, err
}

func (s *Server) grantAuthorizationCode(ctx context.Context, client store.Client, req tokenRequest) (tokenResponse, error) {
	if req.Code == "" || req.CodeVerifier == "" {
		return tokenResponse{}, errInvalidRequest("code and code_verifier are required")
	}
	code, err := s.redeemCode(ctx, client, req)
	if err != nil {
		return tokenResponse{}, err
	}
	g := grant{
		Client: client, Subject: code.Subject, Claims: code.Claims, Scope: code.Scope,
		Resource: code.Resource, FamilyID: code.FamilyID, Nonce: code.Nonce, AuthTime: code.AuthTime, User: true,
	}
	resp, err := s.issueTokens(ctx, g, code.Scope, slices.Contains(client.GrantTypes, GrantRefreshToken))
	if err == nil {
		s.log.InfoContext(ctx, "tokens issued", "grant", GrantAuthorizationCode, "client_id", client.ID, "sub", code.Subject, "aud", g.audience())
	}
	return resp, err
}

// redeemCode spends an authorization code for a request that passes its
// bindings, or reports why not (revoking its grant when it is a replay).
func (s *Server) redeemCode(ctx context.Context, client store.Client, req tokenRequest) (store.Code, error) {
	hash := hashToken(req.Code)
	code, err := s.store.GetCode(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Code{}, newError(ErrInvalidGrant, "unknown authorization code")
	}
	if err != nil {
		return store.Code{}, err
	}
	// The bindings are checked before the code is spent: a request that
	// could not have redeemed it (another client, redirect URI or
	// resource, a wrong PKCE verifier) must neither burn it, which would
	// let whoever intercepted the code deny the real client, nor count as
	// its replay, which would let them revoke the real client's tokens.
	if err := checkCodeBindings(code, client, req); err != nil {
		return store.Code{}, err
	}
	if !code.Used {
		if !s.now().Before(code.ExpiresAt) {
			return store.Code{}, newError(ErrInvalidGrant, "authorization code expired")
		}
		// The take is atomic: of concurrent redemptions one finds the code
		// unused, the others find it used and are replays.
		if code, err = s.store.TakeCode(ctx, hash); err != nil {
			return store.Code{}, err
		}
	}
	if code.Used {
		return store.Code{}, s.codeReplayed(ctx, client, code)
	}
	return code, nil
}

// codeReplayed answers a second redemption of a code (RFC 6749 §4.1.2: it
// must fail and should revoke every token already issued from it). Expiry
// is not checked first, so a late replay (within store.CodeGrace) still
// revokes.
func (s *Server) codeReplayed(ctx context.Context, client store.Client, code store.Code) error {
	if err := s.store.RevokeFamily(ctx, code.FamilyID); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "authorization code replayed; grant revoked", "client_id", client.ID, "family", code.FamilyID)
	return newError(ErrInvalidGrant, "authorization code already used").withReason(reasonCodeReplay)
}

// checkCodeBindings verifies everything a code is bound to: only a request
// that passes could have redeemed it.
func checkCodeBindings(code store.Code, client store.Client, req tokenRequest) error {
	if code.ClientID != client.ID {
		return newError(ErrInvalidGrant, "authorization code was issued to another client")
	}
	// RFC 6749 §4.1.3: redirect_uri must be identical to the one in the
	// authorization request (absent if it was absent there).
	if req.RedirectURI != code.RedirectURI {
		return newError(ErrInvalidGrant, "redirect_uri does not match the authorization request")
	}
	if !verifyPKCE(req.CodeVerifier, code.Challenge) {
		return newError(ErrInvalidGrant, "code_verifier does not match the code_challenge")
	}
	if req.Resource != "" && req.Resource != code.Resource {
		return newError(ErrInvalidTarget, "resource does not match the authorization request")
	}
	return nil
}

// verifyPKCE checks an RFC 7636 §4.1 verifier (43-128 unreserved
// characters) against an S256 challenge, in constant time.
func verifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

// grantClientCredentials issues a token to a confidential client acting for
// itself (RFC 6749 §4.4): sub is the client id, no refresh token.
func (s *Server) grantClientCredentials(ctx context.Context, client store.Client, req tokenRequest) (tokenResponse, error) {
	if !isConfidential(client) {
		return tokenResponse{}, newError(ErrUnauthorizedClient, "client_credentials needs a confidential client")
	}
	scope, err := resolveScope(req.Scope, client.Scopes)
	if err != nil {
		return tokenResponse{}, err
	}
	if err := s.checkResource(req.Resource); err != nil {
		return tokenResponse{}, err
	}
	g := grant{Client: client, Subject: client.ID, Scope: scope, Resource: req.Resource, AuthTime: s.now()}
	resp, err := s.issueTokens(ctx, g, scope, false)
	if err == nil {
		s.log.InfoContext(ctx, "tokens issued", "grant", GrantClientCredentials, "client_id", client.ID, "aud", g.audience())
	}
	return resp, err
}
