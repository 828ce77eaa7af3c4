package authserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countKeys counts each top-level member name of a JSON object, so a test
// can see a duplicate that decoding into a map would hide.
func countKeys(t *testing.T, obj []byte) map[string]int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	counts := map[string]int{}
	for dec.More() {
		name, err := dec.Token()
		require.NoError(t, err)
		counts[name.(string)]++
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return counts
}

func TestClaimsJSONAddsUserClaimsButNotOverServerOnes(t *testing.T) {
	fixed := accessClaims{Issuer: "https://as", Subject: "alice", Audience: "https://rs", Expiry: 20, IssuedAt: 10, NotBefore: 10, JTI: "j", Scope: "a b", ClientID: "c"}
	user := map[string]any{"email": "alice@example.com", "sub": "mallory", "exp": 1e12, "groups": []any{"x"}}
	body, err := claimsJSON(fixed, accessClaimNames, user)
	require.NoError(t, err)
	for name, n := range countKeys(t, body) {
		assert.Equal(t, 1, n, "claim %s appears %d times", name, n)
	}
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, "alice", got["sub"])
	assert.Equal(t, float64(20), got["exp"])
	assert.Equal(t, "alice@example.com", got["email"])
	assert.Equal(t, []any{"x"}, got["groups"])
	assert.Len(t, got, len(accessClaimNames)+2)

	plain, err := claimsJSON(fixed, accessClaimNames, nil)
	require.NoError(t, err)
	assert.Len(t, countKeys(t, plain), len(accessClaimNames))
}

func TestIDClaimsOmitAbsentNonce(t *testing.T) {
	body, err := claimsJSON(idClaims{Issuer: "i", Subject: "s", Audience: "c", AZP: "c"}, idClaimNames, map[string]any{"nonce": "forged"})
	require.NoError(t, err)
	assert.NotContains(t, countKeys(t, body), "nonce", "no nonce was requested; a user claim cannot add one")
}

// TestSignMakesVerifiableJWS: the hand-assembled compact JWS verifies with
// golang-jwt, with alg, kid and typ in the header and the payload intact.
func TestSignMakesVerifiableJWS(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			path := ""
			if alg == "RS256" {
				path = sharedKeyFile
			}
			k, err := loadOrCreateKey(path, alg, discard)
			require.NoError(t, err)
			ks := &keySet{current: k}
			signed, err := ks.sign([]byte(`{"sub":"alice","n":1}`), typAccessToken)
			require.NoError(t, err)
			assert.Equal(t, 2, strings.Count(signed, "."))
			claims := jwt.MapClaims{}
			tok, err := jwt.ParseWithClaims(signed, claims, func(*jwt.Token) (any, error) { return k.private.Public(), nil },
				jwt.WithValidMethods([]string{alg}))
			require.NoError(t, err)
			assert.Equal(t, alg, tok.Header["alg"])
			assert.Equal(t, k.kid, tok.Header["kid"])
			assert.Equal(t, typAccessToken, tok.Header["typ"])
			assert.Equal(t, "alice", claims["sub"])
			assert.Equal(t, float64(1), claims["n"])

			// Another payload under the same signature does not verify.
			parts := strings.Split(signed, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","n":1}`))
			_, err = jwt.Parse(strings.Join(parts, "."), func(*jwt.Token) (any, error) { return k.private.Public(), nil })
			assert.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)
		})
	}
}
