package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// scrapeSum fetches a Prometheus text exposition and returns the sum of every
// series of the named metric (all label combinations), and whether any series
// of that name was present.
func scrapeSum(ctx context.Context, client *http.Client, metricsURL, name string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, false, fmt.Errorf("scrape %s: %w", metricsURL, err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("scrape %s: %w", metricsURL, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("scrape %s: %w", metricsURL, statusError(resp))
	}
	return sumSeries(io.LimitReader(resp.Body, 16<<20), name)
}

// sumSeries parses the text exposition format: one sample per line,
// `name{labels} value [timestamp]`, comments starting with '#'.
func sumSeries(r io.Reader, name string) (float64, bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 || line[:end] != name {
			continue
		}
		rest := line[end:]
		if rest[0] == '{' {
			close := strings.LastIndexByte(rest, '}')
			if close < 0 {
				return 0, false, fmt.Errorf("metrics: malformed line %q", line)
			}
			rest = rest[close+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metrics: value in %q: %w", line, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("metrics: read: %w", err)
	}
	return sum, found, nil
}

// residentBytes reads VmRSS of a local process from /proc/<pid>/status.
func residentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(v) // "12345 kB"
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("read RSS of pid %d: unexpected VmRSS line %q", pid, v)
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read RSS of pid %d: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("read RSS of pid %d: no VmRSS line", pid)
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// the kernel fixes at 100 for user space on every architecture Go supports.
const userHZ = 100

// processCPU returns the user plus system CPU time a local process has used,
// from fields 14 and 15 of /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields are counted after its closing parenthesis, which is field 3.
	end := strings.LastIndexByte(string(raw), ')')
	if end < 0 {
		return 0, fmt.Errorf("read CPU time of pid %d: malformed stat", pid)
	}
	fields := strings.Fields(string(raw[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("read CPU time of pid %d: short stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// waitReady polls url every millisecond until it answers 200 or timeout
// passes, and returns the time from since to the first 200. bench.sh starts
// a server, notes the time, and runs this to measure start-up to ready.
func waitReady(ctx context.Context, client *http.Client, url string, since time.Time, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, fmt.Errorf("wait for %s: %w", url, err)
		}
		if resp, err := client.Do(req); err == nil {
			ok := resp.StatusCode == http.StatusOK
			drain(resp)
			if ok {
				return time.Since(since), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for %s: not ready after %s", url, timeout)
		case <-tick.C:
		}
	}
}
