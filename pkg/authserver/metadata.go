package authserver

// This file implements authorization server metadata (RFC 8414 §2) and the
// OpenID Connect Discovery 1.0 document (§3), served from one description.

import (
	"net/http"
)

// metadata is the discovery document. Field names are the RFC 8414 and
// OIDC Discovery names.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseISSParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ResourceIndicatorsSupported                bool     `json:"resource_indicators_supported"`
}

func (s *Server) metadata() metadata {
	authMethods := []string{AuthNone, AuthClientSecretBasic, AuthClientSecretPost}
	m := metadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             s.endpointURL(pathAuthorize),
		TokenEndpoint:                     s.endpointURL(pathToken),
		JWKSURI:                           s.endpointURL(pathJWKS),
		IntrospectionEndpoint:             s.endpointURL(pathIntrospect),
		RevocationEndpoint:                s.endpointURL(pathRevoke),
		UserinfoEndpoint:                  s.endpointURL(pathUserinfo),
		ScopesSupported:                   s.cfg.Scopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               supportedGrants,
		TokenEndpointAuthMethodsSupported: authMethods,
		// Introspection needs a confidential client (RFC 7662 §2.1).
		IntrospectionEndpointAuthMethodsSupported:  []string{AuthClientSecretBasic, AuthClientSecretPost},
		RevocationEndpointAuthMethodsSupported:     authMethods,
		CodeChallengeMethodsSupported:              []string{"S256"},
		AuthorizationResponseISSParameterSupported: true,
		ClientIDMetadataDocumentSupported:          s.cfg.CIMD.Enabled,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{s.cfg.Keys.Algorithm},
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "email", "name", "scope", "client_id"},
		ResourceIndicatorsSupported:                true,
	}
	if s.cfg.Registration.Enabled {
		m.RegistrationEndpoint = s.endpointURL(pathRegister)
	}
	return m
}

func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, s.metadata())
}
