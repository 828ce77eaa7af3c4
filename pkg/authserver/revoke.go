package authserver

// This file implements token revocation (RFC 7009). Revoking a refresh
// token revokes its whole family and the access tokens issued in it
// (§2.1 "SHOULD also invalidate all access tokens based on the same
// authorization grant"); revoking an access token records its jti so
// introspection reports it inactive. Unknown and invalid tokens get 200
// (§2.2), so the endpoint tells a caller nothing about other tokens.

import (
	"errors"
	"net/http"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(r *http.Request) error {
	form, err := readForm(r)
	if err != nil {
		return err
	}
	client, err := s.authenticateClient(r, form)
	if err != nil {
		return err
	}
	token := form.get("token")
	if token == "" {
		return errInvalidRequest("token is required")
	}
	ctx := r.Context()
	rt, err := s.store.GetRefresh(ctx, hashToken(token))
	switch {
	case err == nil:
		if rt.ClientID != client.ID {
			return nil // not this client's token: nothing to do (RFC 7009 §2.1)
		}
		s.log.InfoContext(ctx, "refresh token revoked", "client_id", client.ID, "family", rt.FamilyID)
		return s.store.RevokeFamily(ctx, rt.FamilyID)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	claims, err := s.parseAccessToken(token)
	if err != nil {
		return nil
	}
	if cid, _ := claims["client_id"].(string); cid != client.ID {
		return nil
	}
	jti, _ := claims["jti"].(string)
	sub, _ := claims["sub"].(string)
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil // parseAccessToken requires exp; unreachable
	}
	s.log.InfoContext(ctx, "access token revoked", "client_id", client.ID, "jti", jti)
	return storeError("revoke access token", s.store.RevokeAccess(ctx, store.AccessToken{
		JTI: jti, ClientID: client.ID, Subject: sub, ExpiresAt: exp.Time,
	}))
}
