package authserver

// This file implements the OpenID Connect UserInfo endpoint (OIDC Core
// §5.3) with bearer tokens in the Authorization header only (RFC 6750 §2.1;
// query tokens leak into logs). Any access token this server issued is
// accepted, whatever its audience.

import (
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearerToken(r)
	if !ok {
		s.writeError(w, r, newError(ErrInvalidToken, "bearer token required"))
		return
	}
	claims, err := s.activeAccessToken(r.Context(), raw)
	if err != nil {
		s.writeError(w, r, newError(ErrInvalidToken, "token is not active"))
		return
	}
	// The claims are personal data: neither the response nor an HTTP/1.0
	// cache in between may keep them (RFC 9111 §5.4 for Pragma).
	writeNoStoreJSON(w, http.StatusOK, userinfoClaims(claims))
}

// userinfoClaims are the token's claims about the user, without the ones
// about the token itself.
func userinfoClaims(claims jwt.MapClaims) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		switch k {
		case "iss", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id":
		default:
			out[k] = v
		}
	}
	return out
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}
