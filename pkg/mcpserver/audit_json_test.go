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
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 24*60*60))},
		{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", -100*60*60))},
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

// FuzzAuditJSON: for any strings, float, status and time (zone included),
// appendJSON writes json.Marshal's bytes, or fails where it fails.
func FuzzAuditJSON(f *testing.F) {
	for i, s := range auditJSONStrings {
		f.Add(s, auditJSONStrings[(i+1)%len(auditJSONStrings)], 0.734, 200, int64(1795000000123456789), 3600)
	}
	f.Add("", "", 1e21, -1, int64(-62135596800000000), -86400)
	f.Add("a", "b", 1e-7, 500, int64(253402300799999999), 86399)
	f.Fuzz(func(t *testing.T, a, b string, dur float64, status int, nanos int64, offset int) {
		rec := AuditRecord{
			Time: time.Unix(0, nanos).In(time.FixedZone("z", offset)), RequestID: a, Subject: b,
			Email: a + b, ClientID: b, JTI: a, SessionID: b, HTTPMethod: a, Path: b, Method: a,
			Tool: b, Resource: a, Outcome: b, Status: status, Error: a, DurationMS: dur, RemoteAddr: b,
		}
		want, wantErr := json.Marshal(rec)
		got, err := rec.appendJSON(nil)
		if wantErr != nil {
			require.Error(t, err, "json.Marshal: %v", wantErr)
			return
		}
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}

// BenchmarkAuditRecordJSON compares appendJSON with json.Marshal on a
// typical record of an authenticated tools/call.
func BenchmarkAuditRecordJSON(b *testing.B) {
	rec := AuditRecord{
		Time: time.Date(2026, 11, 22, 11, 0, 0, 123456789, time.UTC), RequestID: "0b1e4c2a-6f0d-4d38-9a51-2f7b1c0e9d11",
		Subject: "alice", Email: "alice@example.com", ClientID: "http-oauth2-client", JTI: "5f2b7c1e-3a4d-4e6f-8a9b-0c1d2e3f4a5b",
		SessionID: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", HTTPMethod: "POST", Path: "/mcp", Method: "tools/call", Tool: "echo",
		Outcome: OutcomeAllowed, Status: 200, DurationMS: 0.734, RemoteAddr: "127.0.0.1:54321",
	}
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rec.appendJSON(make([]byte, 0, 512)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
