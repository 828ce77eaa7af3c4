package client

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Fingerprint names a secret without revealing it: the first 8 hex digits
// of its SHA-256, the way the project logs tokens.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// Mask shows a secret as its length and fingerprint.
func Mask(secret string) string {
	if secret == "" {
		return "(none)"
	}
	return fmt.Sprintf("****(%d chars, %s)", len(secret), Fingerprint(secret))
}

// DecodeClaims reads a JWT's payload WITHOUT verifying its signature. The
// client only displays claims (who it is logged in as, expiry): the access
// token is opaque to a client (RFC 6749 §1.4) and only the resource server
// may trust its contents. Nil for a token that is not a JWT.
func DecodeClaims(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return nil
	}
	return claims
}

// TokenSummary is what the client shows about a token: claims, never the token.
type TokenSummary struct {
	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token"`
	TokenType    string         `json:"token_type,omitempty"`
	Scope        string         `json:"scope,omitempty"`
	ExpiresAt    *time.Time     `json:"expires_at,omitempty"`
	ExpiresIn    string         `json:"expires_in,omitempty"`
	Claims       map[string]any `json:"claims,omitempty"`
}

// Summarize builds a TokenSummary with masked secrets.
func Summarize(t *TokenRecord, now time.Time) TokenSummary {
	s := TokenSummary{AccessToken: Mask(t.AccessToken), RefreshToken: Mask(t.RefreshToken),
		TokenType: t.TokenType, Scope: t.Scope, Claims: DecodeClaims(t.AccessToken)}
	if !t.Expiry.IsZero() {
		exp := t.Expiry.UTC()
		s.ExpiresAt = &exp
		if d := t.Expiry.Sub(now).Round(time.Second); d > 0 {
			s.ExpiresIn = d.String()
		} else {
			s.ExpiresIn = "expired"
		}
	}
	return s
}

// claimString returns a string claim ("" when absent or not a string).
func claimString(claims map[string]any, name string) string {
	switch v := claims[name].(type) {
	case string:
		return v
	case []any:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, " ")
	case float64:
		return fmt.Sprintf("%.0f", v)
	}
	return ""
}
