package authserver

// This file verifies the access tokens this server issued (for
// introspection, revocation and userinfo): signature with a published key,
// alg RS256/ES256 only (never none or HMAC), typ at+jwt (RFC 9068 §4, so an
// ID token is not accepted as an access token), iss, exp and nbf, then the
// revocation state of its jti and family.

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

var errTokenInactive = errors.New("token is not active")

// parseAccessToken checks a JWT's signature and registered claims.
func (s *Server) parseAccessToken(raw string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "at+jwt" {
			return nil, fmt.Errorf("typ %q is not at+jwt", typ)
		}
		kid, _ := t.Header["kid"].(string)
		k, ok := s.keys.find(kid, s.now())
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		if t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("alg %s does not match key", t.Method.Alg())
		}
		return k.private.Public(), nil
	},
		jwt.WithValidMethods([]string{"RS256", "ES256"}),
		jwt.WithIssuer(s.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errTokenInactive, err)
	}
	return claims, nil
}

// activeAccessToken parses raw and checks it has not been revoked.
func (s *Server) activeAccessToken(ctx context.Context, raw string) (jwt.MapClaims, error) {
	claims, err := s.parseAccessToken(raw)
	if err != nil {
		return nil, err
	}
	jti, _ := claims["jti"].(string)
	rec, err := s.store.GetAccess(ctx, jti)
	if errors.Is(err, store.ErrNotFound) {
		// Signed by us but unknown to the store (a memory store restarted):
		// nothing says it was revoked.
		return claims, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Revoked {
		return nil, fmt.Errorf("%w: revoked", errTokenInactive)
	}
	if rec.FamilyID != "" {
		fam, err := s.store.GetFamily(ctx, rec.FamilyID)
		if err == nil && fam.Revoked {
			return nil, fmt.Errorf("%w: grant revoked", errTokenInactive)
		}
	}
	return claims, nil
}
