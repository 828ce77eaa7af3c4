package mcpserver

// This file encodes an AuditRecord as one JSON line, byte for byte what
// json.Marshal makes of it (TestAuditJSONMatchesMarshal compares them), at
// a fraction of the cost: every request writes a record, and json.Marshal's
// reflection was about a tenth of what a tools/call cost the server
// (docs/PERFORMANCE.md; BenchmarkAuditRecordJSON). Any value the fast path
// does not cover exactly (a string needing escapes, a float printed in
// exponent form, a time json.Marshal refuses) is handed to json.Marshal, so
// the output never differs (FuzzAuditJSON).

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendJSON appends rec's JSON encoding, as json.Marshal(rec) writes it.
func (rec *AuditRecord) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"time":`...)
	b, err := appendJSONTime(b, rec.Time)
	if err != nil {
		return nil, err
	}
	b = appendJSONField(b, `,"request_id":`, rec.RequestID, false)
	b = appendJSONField(b, `,"subject":`, rec.Subject, true)
	b = appendJSONField(b, `,"email":`, rec.Email, true)
	b = appendJSONField(b, `,"client_id":`, rec.ClientID, true)
	b = appendJSONField(b, `,"jti":`, rec.JTI, true)
	b = appendJSONField(b, `,"session_id":`, rec.SessionID, true)
	b = appendJSONField(b, `,"http_method":`, rec.HTTPMethod, false)
	b = appendJSONField(b, `,"path":`, rec.Path, false)
	b = appendJSONField(b, `,"method":`, rec.Method, true)
	b = appendJSONField(b, `,"tool":`, rec.Tool, true)
	b = appendJSONField(b, `,"resource":`, rec.Resource, true)
	b = appendJSONField(b, `,"outcome":`, rec.Outcome, false)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = appendJSONField(b, `,"error":`, rec.Error, true)
	b = append(b, `,"duration_ms":`...)
	if b, err = appendJSONFloat(b, rec.DurationMS); err != nil {
		return nil, err
	}
	b = appendJSONField(b, `,"remote_addr":`, rec.RemoteAddr, false)
	return append(b, '}'), nil
}

// appendJSONField appends key and s, or nothing for an empty s when the
// field is omitempty.
func appendJSONField(b []byte, key, s string, omitEmpty bool) []byte {
	if omitEmpty && s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// jsonPlain marks the bytes json.Marshal copies into a string unchanged:
// printable ASCII but the quote, the backslash and the three it escapes for
// HTML (<, >, &).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// appendJSONString appends s quoted. Audit fields are nearly always plain
// ASCII; anything else goes through json.Marshal, which cannot fail on a
// string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does, which refuses
// a year outside 0-9999 and a zone offset of a day or more.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	_, offset := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || offset <= -24*60*60 || offset >= 24*60*60 {
		q, err := json.Marshal(t) // its error names the problem
		return append(b, q...), err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendJSONFloat appends f as json.Marshal does: in 'f' form from 1e-6 to
// below 1e21 (and 0); the exponent form and NaN/Inf go through json.Marshal.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if abs := max(f, -f); f == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64), nil
	}
	q, err := json.Marshal(f)
	return append(b, q...), err
}
