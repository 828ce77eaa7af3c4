package scope

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestValidTokenEveryByte checks every byte value alone and inside a token
// against the grammar's three ranges.
func TestValidTokenEveryByte(t *testing.T) {
	for c := range 256 {
		want := c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)
		assert.Equal(t, want, ValidToken(string([]byte{byte(c)})), "byte %#x", c)
		assert.Equal(t, want, ValidToken("mcp:"+string([]byte{byte(c)})+"read"), "byte %#x inside", c)
	}
	assert.False(t, ValidToken(""))
	assert.True(t, ValidToken("mcp:read"))
	assert.False(t, ValidToken("mcp:read mcp:write"))
	assert.False(t, ValidToken("é"))
}
