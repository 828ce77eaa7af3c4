package main

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// maxSamplesPerWorker bounds the latencies one worker keeps. Past it the
// worker keeps a uniform random sample (reservoir sampling), so percentiles
// stay unbiased while memory stays bounded however long the run.
const maxSamplesPerWorker = 1 << 17

// maxErrorKinds bounds the distinct error messages kept per scenario; a
// server returning a different message each time must not grow the tool's
// memory.
const maxErrorKinds = 8

// recorder collects one worker's results; it is not shared between
// goroutines, so it needs no lock.
type recorder struct {
	count   int64
	errors  int64
	samples []time.Duration
	rng     *rand.Rand
	errKind map[string]int64
}

func newRecorder(seed uint64) *recorder {
	return &recorder{
		samples: make([]time.Duration, 0, 4096),
		rng:     rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		errKind: map[string]int64{},
	}
}

// observe records one request's latency and, if it failed, its error.
func (r *recorder) observe(d time.Duration, err error) {
	r.count++
	if err != nil {
		r.errors++
		msg := err.Error()
		if _, ok := r.errKind[msg]; ok || len(r.errKind) < maxErrorKinds {
			r.errKind[msg]++
		}
	}
	if len(r.samples) < maxSamplesPerWorker {
		r.samples = append(r.samples, d)
		return
	}
	if j := r.rng.Int64N(r.count); j < maxSamplesPerWorker {
		r.samples[j] = d
	}
}

// summary is what one scenario's run produced.
type summary struct {
	Requests    int64            `json:"requests"`
	Errors      int64            `json:"errors"`
	Seconds     float64          `json:"seconds"`
	RPS         float64          `json:"rps"`
	P50Millis   float64          `json:"p50_ms"`
	P99Millis   float64          `json:"p99_ms"`
	MaxMillis   float64          `json:"max_ms"`
	ErrorKinds  map[string]int64 `json:"error_kinds,omitempty"`
	Concurrency int              `json:"concurrency"`
}

// summarize merges the workers' recorders. Workers that kept a sample of
// their latencies are weighted by how many requests each sample stands for,
// so a fast worker's reservoir does not count as much as a slow one's
// complete list.
func summarize(recs []*recorder, elapsed time.Duration) summary {
	s := summary{Seconds: elapsed.Seconds(), Concurrency: len(recs), ErrorKinds: map[string]int64{}}
	var weighted []weightedSample
	for _, r := range recs {
		s.Requests += r.count
		s.Errors += r.errors
		for msg, n := range r.errKind {
			if _, ok := s.ErrorKinds[msg]; ok || len(s.ErrorKinds) < maxErrorKinds {
				s.ErrorKinds[msg] += n
			}
		}
		if len(r.samples) == 0 {
			continue
		}
		w := float64(r.count) / float64(len(r.samples))
		for _, d := range r.samples {
			weighted = append(weighted, weightedSample{d, w})
		}
	}
	if elapsed > 0 {
		s.RPS = float64(s.Requests) / elapsed.Seconds()
	}
	s.P50Millis = millis(percentile(weighted, 0.50))
	s.P99Millis = millis(percentile(weighted, 0.99))
	if len(weighted) > 0 {
		s.MaxMillis = millis(slices.MaxFunc(weighted, func(a, b weightedSample) int { return cmp.Compare(a.d, b.d) }).d)
	}
	if len(s.ErrorKinds) == 0 {
		s.ErrorKinds = nil
	}
	return s
}

type weightedSample struct {
	d time.Duration
	w float64
}

// percentile returns the smallest latency at or below which a fraction q of
// the (weighted) requests fall.
func percentile(samples []weightedSample, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i].d < samples[j].d })
	var total float64
	for _, s := range samples {
		total += s.w
	}
	target := q * total
	var acc float64
	for _, s := range samples {
		acc += s.w
		if acc >= target {
			return s.d
		}
	}
	return samples[len(samples)-1].d
}

func millis(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e6
}
