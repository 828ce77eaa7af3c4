// Package scope holds the syntax of OAuth 2.0 scope values (RFC 6749 §3.3),
// which the authorization server checks in what clients ask for and the MCP
// server in the scp claims of other providers' tokens.
package scope

// ValidToken reports whether s is one scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ), printable ASCII without space, quote or
// backslash.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}
