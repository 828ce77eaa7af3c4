package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewJSONAtLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "warn", "json")
	require.NoError(t, err)
	log.InfoContext(context.Background(), "dropped")
	log.WarnContext(context.Background(), "kept", "k", "v")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	assert.Equal(t, "kept", rec["msg"])
	assert.Equal(t, "v", rec["k"])
}

func TestNewText(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "INFO", "")
	require.NoError(t, err)
	log.Info("hello")
	assert.Contains(t, buf.String(), "msg=hello")
}

func TestNewRejectsBadSettings(t *testing.T) {
	_, err := New(&bytes.Buffer{}, "loud", "text")
	require.ErrorContains(t, err, "log.level")
	_, err = New(&bytes.Buffer{}, "info", "xml")
	require.ErrorContains(t, err, "log.format")
}
