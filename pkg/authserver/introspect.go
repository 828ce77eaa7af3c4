package authserver

// This file implements token introspection (RFC 7662). The caller must be
// an authenticated confidential client (RFC 7662 §2.1 requires protecting
// the endpoint; §4 warns against token scanning); any such client may ask.
// Access tokens are JWTs checked for signature, expiry and revocation;
// refresh tokens are looked up by hash.

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	resp, err := s.introspect(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeNoStoreJSON(w, http.StatusOK, resp)
}

func (s *Server) introspect(r *http.Request) (map[string]any, error) {
	form, err := readForm(r)
	if err != nil {
		return nil, err
	}
	client, err := s.authenticateClient(r, form)
	if err != nil {
		return nil, err
	}
	if !isConfidential(client) {
		return nil, newError(ErrInvalidClient, "introspection needs a confidential client")
	}
	token := form.get("token")
	if token == "" {
		return nil, errInvalidRequest("token is required")
	}
	// token_type_hint is only a hint (RFC 7662 §2.1): both kinds are tried.
	if claims, err := s.activeAccessToken(r.Context(), token); err == nil {
		out := map[string]any{"active": true, "token_type": "Bearer"}
		for k, v := range claims {
			out[k] = v
		}
		if email, ok := claims["email"].(string); ok {
			out["username"] = email
		}
		return out, nil
	} else if !errors.Is(err, errTokenInactive) {
		return nil, err
	}
	return s.introspectRefresh(r.Context(), token)
}

func (s *Server) introspectRefresh(ctx context.Context, token string) (map[string]any, error) {
	inactive := map[string]any{"active": false}
	rt, err := s.store.GetRefresh(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return nil, err
	}
	if rt.Used || !s.now().Before(rt.ExpiresAt) {
		return inactive, nil
	}
	fam, err := s.store.GetFamily(ctx, rt.FamilyID)
	if err != nil || fam.Revoked {
		return inactive, nil
	}
	out := map[string]any{
		"active": true, "token_type": "refresh_token", "scope": rt.Scope, "client_id": rt.ClientID,
		"sub": rt.Subject, "iss": s.issuer, "exp": rt.ExpiresAt.Unix(), "iat": rt.IssuedAt.Unix(),
	}
	if rt.Resource != "" {
		out["aud"] = rt.Resource
	}
	return out, nil
}
