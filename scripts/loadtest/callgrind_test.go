package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callgrindOutput is what callgrind_control -e printed for a running server
// (valgrind 3.19).
const callgrindOutput = `PID 5552: bin/http-mcp-mock-server
sending command status internal to pid 5552

  Totals:        Ir 
   Th 1   9,895,849 
   Th 2     114,915 
   Th 3  13,653,197 
`

func TestParseCallgrindTotals(t *testing.T) {
	n, err := parseCallgrindTotals(strings.NewReader(callgrindOutput))
	require.NoError(t, err)
	assert.Equal(t, int64(9_895_849+114_915+13_653_197), n)

	n, err = parseCallgrindTotals(strings.NewReader("  Totals:Ir \n   Th 1   0 \n   Th 2   0 \n"))
	require.NoError(t, err, "all counters zero: the header has no padding")
	assert.Zero(t, n)

	for name, bad := range map[string]string{
		"empty":             "",
		"no header":         "   Th 1   12 \n",
		"no thread":         "  Totals:        Ir \n",
		"other event first": "  Totals:        Dr        Ir \n   Th 1   1   2 \n",
		"bad count":         "  Totals:        Ir \n   Th 1   1x2 \n",
		"negative count":    "  Totals:        Ir \n   Th 1   -5 \n",
		"not callgrind":     "PID 1: sleep\n  Error: not a callgrind run\n",
	} {
		_, err := parseCallgrindTotals(strings.NewReader(bad))
		assert.Error(t, err, name)
	}
}

// fakeCallgrindControl writes a stand-in for callgrind_control that logs
// its arguments to log and answers -e with callgrindOutput, or fails with
// exit status 1 when fail is set.
func fakeCallgrindControl(t *testing.T, fail bool) (path, log string) {
	dir := t.TempDir()
	path, log = filepath.Join(dir, "callgrind_control"), filepath.Join(dir, "calls.log")
	body := "#!/bin/sh\necho \"$@\" >> " + log + "\n"
	if fail {
		body += "echo 'no callgrind run with pid' >&2\nexit 1\n"
	} else {
		body += "case \"$1\" in -e) cat <<'EOF'\n" + callgrindOutput + "EOF\n;; *) echo OK ;; esac\n"
	}
	require.NoError(t, os.WriteFile(path, []byte(body), 0o700))
	return path, log
}

// TestInstructionCountsPerRequest: with -requests the measured window has
// exactly that many calls; with -callgrind-control the server's counters
// are zeroed as it starts and read as it ends, and divided by the calls.
func TestInstructionCountsPerRequest(t *testing.T) {
	var calls atomic.Int64
	srv := echoServer(t, nil, &calls)
	control, log := fakeCallgrindControl(t, false)
	pid := strconv.Itoa(os.Getpid())
	var stdout, stderr bytes.Buffer
	err := realMain(context.Background(), []string{
		"-scenario", "mcp-echo-noauth", "-mcp-noauth", srv.URL + "/mcp", "-mcp", "",
		"-requests", "50", "-duration", "30s", "-warmup", "0", "-concurrency", "3", "-json",
		"-mcp-noauth-pid", pid, "-callgrind-control", control,
	}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var report runReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report))
	require.Len(t, report.Results, 1)
	res := report.Results[0]
	assert.Empty(t, res.Error)
	assert.Equal(t, int64(50), res.Requests)
	assert.Equal(t, int64(50), calls.Load(), "no request beyond -requests")
	require.NotNil(t, res.ServerInstructions)
	assert.InDelta(t, float64(9_895_849+114_915+13_653_197)/50, *res.ServerInstructions, 0.001)
	logged, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "-z "+pid+"\n-e "+pid+"\n", string(logged), "zeroed at the start of the window, read at its end")
}

// TestInstructionCountFailureIsTheScenariosError: a run asked for
// instruction counts does not quietly lack them.
func TestInstructionCountFailureIsTheScenariosError(t *testing.T) {
	var calls atomic.Int64
	srv := echoServer(t, nil, &calls)
	control, _ := fakeCallgrindControl(t, true)
	var stdout, stderr bytes.Buffer
	err := realMain(context.Background(), []string{
		"-scenario", "mcp-echo-noauth", "-mcp-noauth", srv.URL + "/mcp", "-mcp", "",
		"-requests", "5", "-duration", "30s", "-warmup", "0", "-concurrency", "1", "-json",
		"-mcp-noauth-pid", strconv.Itoa(os.Getpid()), "-callgrind-control", control,
	}, &stdout, &stderr)
	require.Error(t, err)
	var report runReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report))
	require.Len(t, report.Results, 1)
	assert.Contains(t, report.Results[0].Error, "callgrind")
	assert.Nil(t, report.Results[0].ServerInstructions)
}
