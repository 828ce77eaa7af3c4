package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// invalidTokensPerKind is how many distinct tokens of each kind the
// invalid-token scenario cycles through: enough that a server cannot answer
// from one cached rejection, few enough to build in milliseconds before the
// run (signing during the run would load the machine being measured).
const invalidTokensPerKind = 256

// invalidTokens builds the invalid-token scenario's tokens, three kinds in
// turn, each of which a correct resource server answers with 401:
//   - well-formed JWTs with every claim right but an unknown kid, signed by a
//     key of the tool's own: the path that may trigger a JWKS refresh, which
//     the server must rate-limit;
//   - JWTs naming the authorization server's real kid and alg with a
//     signature that does not verify: the full verification cost;
//   - strings that are not JWTs at all: the parse-and-reject cost.
func invalidTokens(ctx context.Context, client *http.Client, as *oauthClient, resource string) ([]string, error) {
	kid, alg, err := firstKey(ctx, client, as.jwksURL)
	if err != nil {
		return nil, err
	}
	own, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	sigLen := map[string]int{"RS256": 256, "ES256": 64}[alg]
	if sigLen == 0 {
		sigLen = 256
	}
	now := time.Now()
	var tokens []string
	for i := range invalidTokensPerKind {
		claims := jwt.MapClaims{
			"iss": as.issuer, "aud": resource, "sub": "loadtest", "client_id": "loadtest",
			"scope": "mcp:read", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"jti": rand.Text(),
		}
		unknown := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		unknown.Header["kid"] = fmt.Sprintf("loadtest-unknown-%d-%s", i, rand.Text()[:8])
		signed, err := unknown.SignedString(own)
		if err != nil {
			return nil, fmt.Errorf("sign unknown-kid token: %w", err)
		}
		forged, err := forgedToken(kid, alg, claims, sigLen)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, signed, forged, "not-a-jwt-"+rand.Text())
	}
	return tokens, nil
}

// forgedToken is a JWT with a real kid and alg whose signature is random
// bytes of the right length.
func forgedToken(kid, alg string, claims jwt.MapClaims, sigLen int) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	if err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	sig := make([]byte, sigLen)
	_, _ = rand.Read(sig)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig), nil
}

// firstKey returns the kid and algorithm of the first key in the JWKS.
func firstKey(ctx context.Context, client *http.Client, jwksURL string) (kid, alg string, err error) {
	if jwksURL == "" {
		return "", "", fmt.Errorf("authorization server metadata has no jwks_uri")
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	if err := getJSON(ctx, client, jwksURL, &set); err != nil {
		return "", "", fmt.Errorf("jwks: %w", err)
	}
	if len(set.Keys) == 0 {
		return "", "", fmt.Errorf("jwks at %s has no keys", jwksURL)
	}
	k := set.Keys[0]
	alg = k.Alg
	if alg == "" {
		alg = map[string]string{"RSA": "RS256", "EC": "ES256"}[k.Kty]
	}
	return k.Kid, alg, nil
}
