package authserver

// This file implements the JWK Set endpoint (RFC 7517 §5): the current
// signing key and the rotated-out keys whose tokens may still be valid.

import (
	"net/http"

	"github.com/MicahParks/jwkset"
)

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range s.keys.published(s.now()) {
		j, err := k.jwk()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		set.Keys = append(set.Keys, j)
	}
	// Short caching: resource servers refetch on an unknown kid anyway.
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, set)
}
