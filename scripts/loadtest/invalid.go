package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// invalidTokensPerKind is how many distinct tokens with a forged signature
// and how many non-JWT strings the invalid-token scenario cycles through:
// enough that a server cannot answer from one cached rejection, few enough
// to build in a millisecond before the run.
const invalidTokensPerKind = 256

// invalidTokenSource hands out, in turn, three kinds of token that a correct
// resource server answers with 401:
//   - a JWT whose every claim is right but whose kid has never been seen
//     before (a fresh one per request, so a cache of unknown kids cannot
//     absorb them): the path that may trigger a JWKS refresh, which the
//     server must rate-limit;
//   - a JWT naming the authorization server's real kid and alg with a
//     signature that does not verify: the full verification cost;
//   - a string that is not a JWT at all: the parse-and-reject cost.
//
// No token carries a valid signature, so none is usable anywhere.
type invalidTokenSource struct {
	alg     string
	payload string // base64url claims, shared by every token
	sig     string // base64url random bytes of the algorithm's signature length
	forged  []string
	garbage []string
	next    atomic.Int64
}

// newInvalidTokenSource reads the authorization server's first key (kid,
// alg) from its JWKS and prepares the tokens.
func newInvalidTokenSource(ctx context.Context, client *http.Client, as *oauthClient, resource string) (*invalidTokenSource, error) {
	kid, alg, err := firstKey(ctx, client, as.jwksURL)
	if err != nil {
		return nil, err
	}
	sigLen := map[string]int{"RS256": 256, "ES256": 64}[alg]
	if sigLen == 0 {
		return nil, fmt.Errorf("jwks: first key has algorithm %q; want RS256 or ES256", alg)
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": as.issuer, "aud": resource, "sub": "loadtest", "client_id": "loadtest",
		"scope": "mcp:read", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": rand.Text(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	src := &invalidTokenSource{alg: alg, payload: b64(claims), sig: b64(randomBytes(sigLen))}
	for range invalidTokensPerKind {
		src.forged = append(src.forged, src.withHeader(kid)+"."+b64(randomBytes(sigLen)))
		src.garbage = append(src.garbage, "not-a-jwt-"+rand.Text())
	}
	return src, nil
}

// token returns the next token in the rotation.
func (s *invalidTokenSource) token() string {
	n := s.next.Add(1) - 1
	i := int(n/3) % invalidTokensPerKind
	switch n % 3 {
	case 0:
		return s.withHeader("loadtest-unknown-"+strconv.FormatInt(n, 36)) + "." + s.sig
	case 1:
		return s.forged[i]
	default:
		return s.garbage[i]
	}
}

// withHeader returns "header.payload" for a JWT naming kid.
func (s *invalidTokenSource) withHeader(kid string) string {
	header, _ := json.Marshal(map[string]string{"alg": s.alg, "kid": kid, "typ": "at+jwt"})
	return b64(header) + "." + s.payload
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
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
