package authserver

// This file implements the JWK Set endpoint (RFC 7517 §5): the current
// signing key and the rotated-out keys whose tokens may still be valid.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
)

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	body, err := s.keys.jwksBody(s.now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Short caching: resource servers refetch on an unknown kid anyway.
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// jwksCache is the JWK Set last served and the keys it was built from. The
// set changes only when a key is rotated in or a retired one expires, so
// the requests in between (every resource server's refresh) get the same
// bytes instead of re-encoding each key.
type jwksCache struct {
	mu   sync.Mutex
	keys []*signingKey
	body []byte
}

// jwksBody returns the JSON JWK Set of the keys published at now.
func (ks *keySet) jwksBody(now time.Time) ([]byte, error) {
	keys := ks.published(now)
	c := &ks.jwks
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.body != nil && slices.Equal(c.keys, keys) {
		return c.body, nil
	}
	body, err := marshalJWKS(keys)
	if err != nil {
		return nil, err
	}
	c.keys, c.body = keys, body
	return body, nil
}

func marshalJWKS(keys []*signingKey) ([]byte, error) {
	set := jwkset.JWKSMarshal{Keys: make([]jwkset.JWKMarshal, 0, len(keys))}
	for _, k := range keys {
		j, err := k.jwk()
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, j)
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return append(body, '\n'), nil
}
