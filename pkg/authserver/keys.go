package authserver

// This file manages the signing keys (RFC 7517, RFC 7518 §3): RS256 by
// default, ES256 selectable, a kid on every key (the RFC 7638 thumbprint),
// loaded from a PEM file or generated and saved on first start. After a
// rotation the old public key stays published until every token it signed
// has expired, so resource servers never see an unknown kid for a live token.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// signingKey is one key pair with its kid and, once rotated out, the time
// after which no token it signed can still be valid.
type signingKey struct {
	kid      string
	alg      string
	private  crypto.Signer
	retireAt time.Time
	// headers are the encoded JOSE headers of the token types this server
	// signs (typ at+jwt, JWT), made once: they never change for a key.
	headers map[string]string
}

// Token types (the JOSE typ header): RFC 9068 §2.1 for access tokens.
const (
	typAccessToken = "at+jwt"
	typIDToken     = "JWT"
)

// joseHeader is the protected header of every token (RFC 7515 §4).
type joseHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// header returns the base64url JOSE header for typ.
func (k *signingKey) header(typ string) (string, error) {
	if h, ok := k.headers[typ]; ok {
		return h, nil
	}
	return encodeHeader(k.alg, k.kid, typ)
}

func encodeHeader(alg, kid, typ string) (string, error) {
	h, err := json.Marshal(joseHeader{Alg: alg, Kid: kid, Typ: typ})
	if err != nil {
		return "", fmt.Errorf("encode JOSE header: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(h), nil
}

func (k *signingKey) method() jwt.SigningMethod {
	if k.alg == "ES256" {
		return jwt.SigningMethodES256
	}
	return jwt.SigningMethodRS256
}

// jwk is the public half as a JSON Web Key.
func (k *signingKey) jwk() (jwkset.JWKMarshal, error) {
	j, err := jwkset.NewJWKFromKey(k.private.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(k.alg), KID: k.kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, fmt.Errorf("marshal jwk %s: %w", k.kid, err)
	}
	return j.Marshal(), nil
}

// keySet holds the current signing key and the retired ones still published.
type keySet struct {
	mu       sync.RWMutex
	current  *signingKey
	previous []*signingKey
	// jwks caches the served JWK Set (jwks.go).
	jwks jwksCache
}

func newSigningKey(priv crypto.Signer, alg string) (*signingKey, error) {
	k := &signingKey{alg: alg, private: priv}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	k.kid = kid
	k.headers = map[string]string{}
	for _, typ := range []string{typAccessToken, typIDToken} {
		if k.headers[typ], err = encodeHeader(alg, kid, typ); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// thumbprint computes the RFC 7638 JWK thumbprint, used as kid so that the
// same key always gets the same kid across restarts.
func thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	m := j.Marshal()
	var canonical []byte
	switch pub.(type) {
	case *rsa.PublicKey:
		canonical, err = json.Marshal(struct {
			E   string `json:"e"`
			KTY string `json:"kty"`
			N   string `json:"n"`
		}{m.E, "RSA", m.N})
	case *ecdsa.PublicKey:
		canonical, err = json.Marshal(struct {
			CRV string `json:"crv"`
			KTY string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{string(m.CRV), "EC", m.X, m.Y})
	default:
		return "", fmt.Errorf("thumbprint: unsupported key type %T", pub)
	}
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func generateKey(alg string) (crypto.Signer, error) {
	if alg == "ES256" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

// loadOrCreateKey reads the PEM key at path, or generates one and saves it
// 0600 when the file does not exist. An empty path keeps a fresh key in
// memory only.
func loadOrCreateKey(path, alg string, log *slog.Logger) (*signingKey, error) {
	if path == "" {
		priv, err := generateKey(alg)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", alg, err)
		}
		return newSigningKey(priv, alg)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err := generateKey(alg)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", alg, err)
		}
		if err := savePrivateKey(path, priv); err != nil {
			return nil, err
		}
		k, err := newSigningKey(priv, alg)
		if err != nil {
			return nil, err
		}
		log.Info("generated a new signing key", "file", path, "alg", alg, "kid", k.kid)
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys.private_key_file: read %s: %w", path, err)
	}
	priv, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys.private_key_file: %s: %w", path, err)
	}
	if err := checkKeyMatchesAlg(priv, alg); err != nil {
		return nil, fmt.Errorf("keys.algorithm: %s: %w", path, err)
	}
	return newSigningKey(priv, alg)
}

func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8: %w", err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		return signer, nil
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
}

func checkKeyMatchesAlg(priv crypto.Signer, alg string) error {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return fmt.Errorf("RSA key but algorithm %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits, need at least 2048", k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return fmt.Errorf("EC key but algorithm %s (ES256 needs P-256)", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T", priv)
	}
	return nil
}

func savePrivateKey(path string, priv crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("marshal private key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keys.private_key_file: create directory: %w", err)
	}
	// O_EXCL: never overwrite a key another process just wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys.private_key_file: create %s: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return fmt.Errorf("keys.private_key_file: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys.private_key_file: close %s: %w", path, err)
	}
	return nil
}

// signer returns the key new tokens are signed with.
func (ks *keySet) signer() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.current
}

// rotate makes next the signing key; the old one stays published until
// retireAt, when the last token it signed has expired.
func (ks *keySet) rotate(next *signingKey, retireAt time.Time) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old := *ks.current
	old.retireAt = retireAt
	ks.previous = append(ks.previous, &old)
	ks.current = next
}

// published returns the keys to publish at now: the current one and the
// retired ones whose tokens may still be valid.
func (ks *keySet) published(now time.Time) []*signingKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	live := ks.previous[:0]
	for _, k := range ks.previous {
		if now.Before(k.retireAt) {
			live = append(live, k)
		}
	}
	ks.previous = live
	return append([]*signingKey{ks.current}, live...)
}

// find returns the published key with kid.
func (ks *keySet) find(kid string, now time.Time) (*signingKey, bool) {
	for _, k := range ks.published(now) {
		if k.kid == kid {
			return k, true
		}
	}
	return nil, false
}

// sign makes a JWS compact serialization (RFC 7515 §7.1) of the JSON
// claims payload with the current key, its kid and typ in the header. It
// encodes the header once per key and the payload once per token, leaving
// the signature itself as the only real cost of issuing a token.
func (ks *keySet) sign(payload []byte, typ string) (string, error) {
	k := ks.signer()
	header, err := k.header(typ)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := make([]byte, 0, len(header)+1+enc.EncodedLen(len(payload)))
	input = append(input, header...)
	input = append(input, '.')
	input = enc.AppendEncode(input, payload)
	sig, err := k.method().Sign(string(input), k.private)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	out := make([]byte, 0, len(input)+1+enc.EncodedLen(len(sig)))
	out = append(append(out, input...), '.')
	return string(enc.AppendEncode(out, sig)), nil
}
