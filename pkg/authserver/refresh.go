package authserver

// This file implements the refresh_token grant (RFC 6749 §6) with the
// rotation OAuth 2.1 §4.3.1 asks of public clients, for every client: each
// use returns a new refresh token and retires the old one; presenting a
// retired one is treated as theft and revokes the whole family. The scope
// may only narrow (RFC 6749 §6); the new refresh token keeps the original.

import (
	"context"
	"errors"
	"slices"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

func (s *Server) grantRefreshToken(ctx context.Context, client store.Client, req tokenRequest) (tokenResponse, error) {
	if req.RefreshToken == "" {
		return tokenResponse{}, errInvalidRequest("refresh_token is required")
	}
	hash := hashToken(req.RefreshToken)
	current, err := s.store.GetRefresh(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return tokenResponse{}, newError(ErrInvalidGrant, "unknown refresh token")
	}
	if err != nil {
		return tokenResponse{}, err
	}
	// Checked before the token is marked used, so another client cannot
	// burn a token it does not own.
	if current.ClientID != client.ID {
		return tokenResponse{}, newError(ErrInvalidGrant, "refresh token was issued to another client")
	}
	// Also before: a request error (a wider scope, another resource) must
	// not burn the token, or the client's next try would trip reuse
	// detection and lose the whole grant. A used token skips this and is
	// caught as reuse below.
	if !current.Used {
		if _, err := narrowScope(req.Scope, current.Scope); err != nil {
			return tokenResponse{}, err
		}
		if req.Resource != "" && req.Resource != current.Resource {
			return tokenResponse{}, newError(ErrInvalidTarget, "resource does not match the original grant")
		}
	}
	rt, err := s.store.TakeRefresh(ctx, hash)
	if err != nil {
		return tokenResponse{}, err
	}
	if rt.Used {
		if err := s.store.RevokeFamily(ctx, rt.FamilyID); err != nil {
			return tokenResponse{}, err
		}
		s.log.WarnContext(ctx, "refresh token reuse detected; family revoked", "client_id", client.ID, "family", rt.FamilyID, "token_hash", hashPrefix(req.RefreshToken))
		return tokenResponse{}, newError(ErrInvalidGrant, "refresh token already used; grant revoked").withReason(reasonRefreshReuse)
	}
	if err := s.checkRefresh(ctx, rt); err != nil {
		return tokenResponse{}, err
	}
	accessScope, err := narrowScope(req.Scope, rt.Scope)
	if err != nil {
		return tokenResponse{}, err
	}
	if req.Resource != "" && req.Resource != rt.Resource {
		return tokenResponse{}, newError(ErrInvalidTarget, "resource does not match the original grant")
	}
	g := grant{
		Client: client, Subject: rt.Subject, Claims: rt.Claims, Scope: rt.Scope,
		Resource: rt.Resource, FamilyID: rt.FamilyID, AuthTime: rt.AuthTime, User: true,
	}
	resp, err := s.issueTokens(ctx, g, accessScope, true)
	if err == nil {
		s.log.InfoContext(ctx, "refresh token rotated", "client_id", client.ID, "sub", rt.Subject, "family", rt.FamilyID)
	}
	return resp, err
}

// checkRefresh refuses an expired token or a revoked family.
func (s *Server) checkRefresh(ctx context.Context, rt store.RefreshToken) error {
	if !s.now().Before(rt.ExpiresAt) {
		return newError(ErrInvalidGrant, "refresh token expired")
	}
	fam, err := s.store.GetFamily(ctx, rt.FamilyID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && fam.Revoked) {
		return newError(ErrInvalidGrant, "refresh token revoked")
	}
	return err
}

// narrowScope returns the requested scope when it is within the original
// grant, or the original when none is requested.
func narrowScope(requested, original string) (string, error) {
	if requested == "" {
		return original, nil
	}
	granted := splitScope(original)
	scopes := splitScope(requested)
	for _, sc := range scopes {
		if !slices.Contains(granted, sc) {
			return "", newError(ErrInvalidScope, "scope "+sc+" exceeds the original grant")
		}
	}
	return joinScope(scopes), nil
}
