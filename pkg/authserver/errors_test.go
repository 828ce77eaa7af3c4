package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireDescriptionCharset checks RFC 6749 §5.2: error_description is
// only %x20-21 / %x23-5B / %x5D-7E.
func requireDescriptionCharset(t *testing.T, desc string) {
	t.Helper()
	require.NotEmpty(t, desc)
	require.LessOrEqual(t, len(desc), maxDescriptionLen)
	for i := 0; i < len(desc); i++ {
		c := desc[i]
		require.True(t, c >= 0x20 && c <= 0x7e && c != '"' && c != '\\', "byte %#x at %d in %q", c, i, desc)
	}
}

// A parameter name quoted in an error description, with a quote, a
// backslash, non-ASCII and control characters, comes out as '?'.
const hostileParam = "a\"b\\c\u00e9d\x01e\x7f\n"

func TestErrorDescriptionSanitizedInJSON(t *testing.T) {
	e := newEnv(t, nil)
	body := "grant_type=client_credentials&" + url.QueryEscape(hostileParam) + "=1&" + url.QueryEscape(hostileParam) + "=2"
	resp := e.post("/token", "application/x-www-form-urlencoded", body, basic(testServiceClient, testServiceSecret))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	out := decode(t, resp)
	require.Equal(t, ErrInvalidRequest, out["error"])
	desc := str(out["error_description"])
	requireDescriptionCharset(t, desc)
	assert.Contains(t, desc, "a?b?c??d?e??")

	long := strings.Repeat("x", 5000)
	resp = e.post("/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&"+long+"=1&"+long+"=2", basic(testServiceClient, testServiceSecret))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	requireDescriptionCharset(t, str(decode(t, resp)["error_description"]))
}

func TestErrorDescriptionSanitizedInRedirect(t *testing.T) {
	e := newEnv(t, nil)
	_, challenge := pkcePair()
	q := authorizeQuery(authzParams{}, challenge, "st-1")
	raw := q.Encode() + "&" + url.QueryEscape(hostileParam) + "=1&" + url.QueryEscape(hostileParam) + "=2"
	params := redirectQuery(t, e.get("/authorize?"+raw, nil), testRedirect)
	require.Equal(t, ErrInvalidRequest, params.Get("error"))
	require.Equal(t, "st-1", params.Get("state"))
	desc := params.Get("error_description")
	requireDescriptionCharset(t, desc)
	assert.Contains(t, desc, "a?b?c??d?e??")
}

func TestSafeDescription(t *testing.T) {
	assert.Equal(t, "plain text, kept!", safeDescription("plain text, kept!"))
	assert.Equal(t, "??", safeDescription("\u00e9"))
	assert.Equal(t, "?tab??", safeDescription("\ttab\"\\"))
	assert.Len(t, safeDescription(strings.Repeat("y", 1000)), maxDescriptionLen)
}
