package mcpserver

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditJSONStrings are values that exercise every branch of the string
// encoding: empty (omitempty), plain, each escaped ASCII byte, control
// bytes, non-ASCII, invalid UTF-8 and the two line separators JSON escapes.
var auditJSONStrings = []string{
	"", "alice", "mcp-service", "tools/call,ping", "/mcp", "127.0.0.1:54321",
	`a"b`, `a\b`, "<script>", "a&b", "x>y", "tab\there", "nl\n", "\x00\x1f\x7f",
	"héllo", "日本語", "\xff\xfe", "a\u2028b\u2029", "…(truncated)", " ", "~!@#$%^*()_+{}|:?",
}

// TestAuditJSONMatchesMarshal: appendJSON writes exactly json.Marshal's
// bytes for records built from every interesting string, float and time.
func TestAuditJSONMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return auditJSONStrings[rng.IntN(len(auditJSONStrings))] }
	floats := []float64{0, math.Copysign(0, -1), 0.5, 1, 1.25, 123.456, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 3e22, -2.5, -1e-9, math.MaxFloat64, math.SmallestNonzeroFloat64}
	times := []time.Time{
		time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 22, 11, 0, 0, 123456789, time.UTC),
		time.Date(2026, 11, 22, 11, 0, 0, 120000000, time.FixedZone("x", 3600+1800)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Now(),
	}
	for i := range 20000 {
		rec := AuditRecord{
			Time: times[rng.IntN(len(times))], RequestID: pick(), Subject: pick(), Email: pick(),
			ClientID: pick(), JTI: pick(), SessionID: pick(), HTTPMethod: pick(), Path: pick(),
			Method: pick(), Tool: pick(), Resource: pick(), Outcome: pick(),
			Status: rng.IntN(1200) - 100, Error: pick(), DurationMS: floats[rng.IntN(len(floats))] * rng.Float64(),
			RemoteAddr: pick(),
		}
		if i%7 == 0 {
			rec.DurationMS = floats[rng.IntN(len(floats))]
		}
		want, err := json.Marshal(rec)
		require.NoError(t, err)
		got, err := rec.appendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "record %d: %+v", i, rec)
	}
}

// TestAuditJSONErrorsLikeMarshal: what json.Marshal refuses (NaN, a year
// past 9999), appendJSON refuses too.
func TestAuditJSONErrorsLikeMarshal(t *testing.T) {
	for _, rec := range []AuditRecord{
		{DurationMS: math.NaN()},
		{DurationMS: math.Inf(1)},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, want := json.Marshal(rec)
		require.Error(t, want)
		_, got := rec.appendJSON(nil)
		assert.Error(t, got, "%+v", rec)
	}
}

// TestAuditJSONAppends: appendJSON adds to what b holds.
func TestAuditJSONAppends(t *testing.T) {
	rec := AuditRecord{Time: time.Unix(0, 0).UTC(), RequestID: "r1", Outcome: OutcomeAllowed}
	got, err := rec.appendJSON([]byte("prefix "))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), `prefix {"time":"1970-01-01T00:00:00Z","request_id":"r1"`), string(got))
}
