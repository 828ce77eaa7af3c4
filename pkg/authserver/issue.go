package authserver

// This file issues tokens: JWT access tokens (RFC 9068 profile: typ
// at+jwt, iss, sub, aud, exp, iat, nbf, jti, scope, client_id), opaque
// rotating refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3.1) and OpenID
// Connect ID tokens (OIDC Core §2).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

// reservedClaims are set by the server; extra claims typed on the consent
// page may not override them.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "azp", "nonce", "auth_time", "at_hash"}

// grant is what a token request was granted: who, for which client, which
// scope and resource.
type grant struct {
	Client   store.Client
	Subject  string
	Claims   map[string]any
	Scope    string
	Resource string
	FamilyID string
	Nonce    string
	AuthTime time.Time
	// User is false for client_credentials (the client acts for itself).
	User bool
}

// tokenResponse is the RFC 6749 §5.1 success response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// randomToken returns 256 random bits, base64url: codes and refresh tokens.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomID returns 128 random bits for jti and family ids.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hashToken is how codes and refresh tokens are stored and looked up.
func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// hashPrefix identifies a secret in logs without revealing it.
func hashPrefix(t string) string { return hashToken(t)[:12] }

// audience is the resource requested (RFC 8707), or the client itself.
func (g grant) audience() string {
	if g.Resource != "" {
		return g.Resource
	}
	return g.Client.ID
}

// issueTokens issues the access token (with accessScope, which may be
// narrower than the grant), a refresh token when withRefresh, and an ID
// token when the grant has openid and a user.
func (s *Server) issueTokens(ctx context.Context, g grant, accessScope string, withRefresh bool) (tokenResponse, error) {
	lt := s.lifetimesNow()
	access, err := s.issueAccessToken(ctx, g, accessScope, lt.AccessTokenTTL)
	if err != nil {
		return tokenResponse{}, err
	}
	resp := tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(lt.AccessTokenTTL / time.Second),
		Scope:       accessScope,
	}
	if withRefresh {
		if resp.RefreshToken, err = s.issueRefreshToken(ctx, g, lt.RefreshTokenTTL); err != nil {
			return tokenResponse{}, err
		}
	}
	if g.User && slices.Contains(splitScope(g.Scope), "openid") {
		if resp.IDToken, err = s.issueIDToken(g, lt.IDTokenTTL); err != nil {
			return tokenResponse{}, err
		}
	}
	return resp, nil
}

// accessClaims are the claims of an access token (RFC 9068 §2.2). A
// struct, not a map: /token encodes one per request, and a struct encodes
// without boxing values or sorting keys.
type accessClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	JTI       string `json:"jti"`
	Scope     string `json:"scope"`
	ClientID  string `json:"client_id"`
}

// accessClaimNames are the names accessClaims sets: a user claim of the
// same name is dropped rather than duplicated.
var accessClaimNames = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id"}

// idClaims are the claims of an ID token (OIDC Core §2).
type idClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	AZP      string `json:"azp"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce,omitempty"`
}

var idClaimNames = []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce"}

// claimsJSON encodes the server's claims and adds the user's claims (email,
// name, extras from the consent page), skipping any the server sets.
func claimsJSON(fixed any, names []string, user map[string]any) ([]byte, error) {
	body, err := json.Marshal(fixed)
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	extra := make(map[string]any, len(user))
	for k, v := range user {
		if !slices.Contains(names, k) {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return body, nil
	}
	more, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("encode user claims: %w", err)
	}
	// Both are JSON objects: splice the members of the second into the first.
	return append(append(body[:len(body)-1], ','), more[1:]...), nil
}

func (s *Server) issueAccessToken(ctx context.Context, g grant, scope string, ttl time.Duration) (string, error) {
	now := s.now()
	jti := randomID()
	payload, err := claimsJSON(accessClaims{
		Issuer: s.issuer, Subject: g.Subject, Audience: g.audience(),
		Expiry: now.Add(ttl).Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(),
		JTI: jti, Scope: scope, ClientID: g.Client.ID,
	}, accessClaimNames, g.Claims)
	if err != nil {
		return "", err
	}
	signed, err := s.keys.sign(payload, typAccessToken)
	if err != nil {
		return "", err
	}
	if !g.User {
		// client_credentials tokens belong to no family or user that could
		// be revoked in bulk; /revoke records them when asked.
		return signed, nil
	}
	err = s.store.PutAccess(ctx, store.AccessToken{
		JTI: jti, FamilyID: g.FamilyID, ClientID: g.Client.ID, Subject: g.Subject, ExpiresAt: now.Add(ttl),
	})
	if err != nil {
		return "", storeError("record access token", err)
	}
	return signed, nil
}

func (s *Server) issueRefreshToken(ctx context.Context, g grant, ttl time.Duration) (string, error) {
	now := s.now()
	token := randomToken()
	expires := now.Add(ttl)
	fam := store.Family{ID: g.FamilyID, ClientID: g.Client.ID, Subject: g.Subject, ExpiresAt: expires}
	if err := s.store.PutFamily(ctx, fam); err != nil {
		return "", storeError("record refresh family", err)
	}
	err := s.store.PutRefresh(ctx, store.RefreshToken{
		Hash: hashToken(token), FamilyID: g.FamilyID, ClientID: g.Client.ID, Subject: g.Subject,
		Scope: g.Scope, Resource: g.Resource, Claims: g.Claims, AuthTime: g.AuthTime,
		IssuedAt: now, ExpiresAt: expires,
	})
	if err != nil {
		return "", storeError("record refresh token", err)
	}
	return token, nil
}

func (s *Server) issueIDToken(g grant, ttl time.Duration) (string, error) {
	now := s.now()
	payload, err := claimsJSON(idClaims{
		Issuer: s.issuer, Subject: g.Subject, Audience: g.Client.ID, AZP: g.Client.ID,
		Expiry: now.Add(ttl).Unix(), IssuedAt: now.Unix(), AuthTime: g.AuthTime.Unix(), Nonce: g.Nonce,
	}, idClaimNames, g.Claims)
	if err != nil {
		return "", err
	}
	return s.keys.sign(payload, typIDToken)
}

// storeError maps a store failure: a full table is a temporary condition.
func storeError(doing string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrFull) {
		return newError(ErrTemporarilyUnavailable, "server is at capacity")
	}
	return fmt.Errorf("%s: %w", doing, err)
}
