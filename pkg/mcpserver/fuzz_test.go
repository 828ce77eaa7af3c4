package mcpserver

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// FuzzInspectJSONRPC checks the body peek used for per-tool scopes: it never
// panics, and every tool a standard JSON decoder would see in a tools/call is
// among the tools the peek reports (the peek may report more, never fewer).
func FuzzInspectJSONRPC(f *testing.F) {
	seeds := []string{
		initializeBody,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"x"}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add_note"}}]`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","Name":"add_note"}}`,
		`{"jsonrpc":"2.0","id":2,"Method":"tools/call","method":"ping","params":{"name":"add_note"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"notes://alice/1"}}`,
		`[]`, `[1,2]`, `null`, `{"method":42}`, `   `, `{"params":[]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	type stdMessage struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		summary, err := inspectJSONRPC(body)
		if err != nil {
			return
		}
		tools := summary.toolsCalled()
		var msgs []stdMessage
		var one stdMessage
		if json.Unmarshal(body, &msgs) != nil {
			if json.Unmarshal(body, &one) != nil {
				return
			}
			msgs = []stdMessage{one}
		}
		for _, m := range msgs {
			if m.Method == "tools/call" && m.Params.Name != "" {
				require.Contains(t, tools, m.Params.Name, "peek missed a tool the std decoder sees: %q", body)
			}
		}
		_ = summary.methods()
		_, _ = summary.targets()
	})
}

// FuzzVerifyJWT feeds arbitrary strings to the JWT verification path: it never
// panics, and nothing verifies unless its signed part (header and claims) is
// exactly that of a token the test key signed.
func FuzzVerifyJWT(f *testing.F) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(f, err)
	jwk, err := jwkset.NewJWKFromKey(&priv.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: "RS256"}})
	require.NoError(f, err)
	setJSON, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	require.NoError(f, err)
	kf, err := keyfunc.NewJWKSetJSON(setJSON)
	require.NoError(f, err)

	now := time.Unix(1_900_000_000, 0)
	cfg := DefaultConfig().Auth
	cfg.Issuer = "http://issuer.test"
	v := newJWTVerifier(cfg, testResource, func() time.Time { return now }, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v.cache = nil // every input goes through full verification
	v.keys.Store(&kf)

	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = kid
		tok.Header["typ"] = "at+jwt"
		s, err := tok.SignedString(key)
		require.NoError(f, err)
		return s
	}
	claims := jwt.MapClaims{"iss": cfg.Issuer, "sub": "alice", "aud": testResource, "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "scope": "mcp:read", "jti": "j1"}
	valid := sign(jwt.SigningMethodRS256, priv, claims, "k1")
	signedPart := valid[:strings.LastIndex(valid, ".")]
	f.Add(valid)
	f.Add(sign(jwt.SigningMethodHS256, []byte("secret"), claims, "k1"))
	f.Add(sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims, "k1"))
	f.Add(sign(jwt.SigningMethodRS256, priv, jwt.MapClaims{"sub": "alice"}, "k1"))
	f.Add("")
	f.Add("a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(t.Context(), token)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidToken)
			return
		}
		require.Equal(t, signedPart, token[:strings.LastIndex(token, ".")], "only the key's own signed content verifies")
		require.Equal(t, "alice", id.Subject)
	})
}

// FuzzAuthorizationFields checks that the allocation-free split of the
// Authorization header gives what strings.Fields gives, for any input.
func FuzzAuthorizationFields(f *testing.F) {
	for _, s := range []string{
		"", " ", "Bearer abc", "  bearer\tabc  ", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz",
		"Bearer\u00a0abc", "Bearer \u2003abc", "Bearer abc\x85", "Bearer é", "\v\fBearer\r\nabc\n",
		// Token-sized values, so the eight-bytes-at-a-time scan is reached.
		"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		"Bearer eyJhbGciOiJSUzI1NiJ9 eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9\u0085c2lnbmF0dXJl",
		"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl\x7f\x80",
		"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJ\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		first, second, n := authorizationFields(v)
		fields := strings.Fields(v)
		require.Equal(t, min(len(fields), 3), n, "field count of %q", v)
		if len(fields) > 0 {
			require.Equal(t, fields[0], first, "first field of %q", v)
		}
		if len(fields) > 1 {
			require.Equal(t, fields[1], second, "second field of %q", v)
		}
	})
}
