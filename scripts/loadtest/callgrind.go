package main

// This file counts the instructions a server executes per request when the
// server runs under valgrind's callgrind tool. Instruction counts do not
// move with what else the machine is doing (the same binary and inputs give
// the same total within a fraction of a percent), so they resolve a few
// percent of difference that CPU time and req/s on a shared two-core
// machine cannot (docs/PERFORMANCE.md, "Auth overhead").
//
// callgrind_control talks to the running callgrind through vgdb: -z zeroes
// every thread's counters, -e prints them.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// callgrindTimeout bounds one callgrind_control call (vgdb waits for the
// valgrind'ed process to reach a point where it can answer).
const callgrindTimeout = 30 * time.Second

// callgrindZero zeroes the event counters of the callgrind run with pid.
func callgrindZero(ctx context.Context, control string, pid int) error {
	if _, err := callgrindControl(ctx, control, "-z", pid); err != nil {
		return fmt.Errorf("zero callgrind counters: %w", err)
	}
	return nil
}

// callgrindInstructions returns the instructions (event Ir, summed over
// every thread) the callgrind run with pid executed since its counters were
// last zeroed.
func callgrindInstructions(ctx context.Context, control string, pid int) (int64, error) {
	out, err := callgrindControl(ctx, control, "-e", pid)
	if err != nil {
		return 0, fmt.Errorf("read callgrind counters: %w", err)
	}
	n, err := parseCallgrindTotals(strings.NewReader(out))
	if err != nil {
		return 0, fmt.Errorf("read callgrind counters of pid %d: %w", pid, err)
	}
	return n, nil
}

func callgrindControl(ctx context.Context, control, action string, pid int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callgrindTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, control, action, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s %d: %w: %s", control, action, pid, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// parseCallgrindTotals reads `callgrind_control -e` output: a "Totals:Ir"
// header, then one "Th <n> <count>" line per thread (counts may carry
// thousands separators). It fails unless the header and at least one
// thread line are there and Ir is the first event, so a changed output
// format is an error rather than a zero.
func parseCallgrindTotals(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	var total int64
	header, threads := false, 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Totals:"):
			// "Totals:        Ir", or "Totals:Ir" when every count is 0.
			events := strings.Fields(strings.TrimPrefix(line, "Totals:"))
			if len(events) == 0 || events[0] != "Ir" {
				return 0, fmt.Errorf("header %q: want Ir as the first event", line)
			}
			header = true
		case header && len(fields) >= 3 && fields[0] == "Th":
			n, err := strconv.ParseInt(strings.ReplaceAll(fields[2], ",", ""), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("thread line %q: bad count", sc.Text())
			}
			total += n
			threads++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !header || threads == 0 {
		return 0, fmt.Errorf("no per-thread Ir totals in the output (is the process running under valgrind --tool=callgrind?)")
	}
	return total, nil
}
