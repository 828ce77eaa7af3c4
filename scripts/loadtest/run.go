package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// worker is one simulated client: do performs one measured request.
type worker interface {
	do(ctx context.Context) error
	close(ctx context.Context)
}

// newWorkerFunc prepares worker i (login, MCP initialize, ...) outside the
// measured window.
type newWorkerFunc func(ctx context.Context, i int) (worker, error)

// runLimits bound a run: it stops at the deadline, or earlier when
// maxRequests (if > 0) have been started.
type runLimits struct {
	concurrency int
	duration    time.Duration
	// warmup is an unmeasured period before the measured one, with the
	// same workers: connections, sessions, caches and the heap reach their
	// steady state, so whichever scenario runs first is not penalized.
	warmup time.Duration
	// atMeasureStart, if set, runs between the warm-up and the measured
	// period (the JWKS counter is read there).
	atMeasureStart func()
	maxRequests    int64
	// onRequest, if set, is called by the worker that started request n
	// (1-based) after it finished: the soak scenario reads memory there.
	onRequest func(n int64)
}

// setupTimeout bounds the preparation of all workers.
const setupTimeout = 60 * time.Second

// run prepares the workers, lets them all loop until the limits are reached,
// and summarizes. Setup failure of any worker fails the run: measuring with
// fewer clients than asked would report a different experiment.
func run(ctx context.Context, newWorker newWorkerFunc, lim runLimits) (summary, error) {
	workers, err := setupWorkers(ctx, newWorker, lim.concurrency)
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, w := range workers {
			if w != nil {
				w.close(closeCtx)
			}
		}
	}()
	if err != nil {
		return summary{}, err
	}

	if lim.warmup > 0 {
		warmUp(ctx, workers, lim.warmup)
	}
	if lim.atMeasureStart != nil {
		lim.atMeasureStart()
	}
	recs := make([]*recorder, len(workers))
	var started atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(lim.duration)
	for i, w := range workers {
		recs[i] = newRecorder(uint64(i) + 1)
		wg.Add(1)
		go func(w worker, rec *recorder) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := started.Add(1)
				if lim.maxRequests > 0 && n > lim.maxRequests {
					return
				}
				t0 := time.Now()
				err := w.do(ctx)
				rec.observe(time.Since(t0), err)
				if lim.onRequest != nil {
					lim.onRequest(n)
				}
			}
		}(w, recs[i])
	}
	wg.Wait()
	return summarize(recs, time.Since(start)), ctx.Err()
}

// warmUp lets every worker send requests for d without recording them.
func warmUp(ctx context.Context, workers []worker, d time.Duration) {
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				_ = w.do(ctx)
			}
		}()
	}
	wg.Wait()
}

// setupWorkers prepares n workers concurrently (a login per worker takes a
// few milliseconds; 64 in a row would be slow) and returns the first error.
func setupWorkers(ctx context.Context, newWorker newWorkerFunc, n int) ([]worker, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	workers := make([]worker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// At most 8 preparations at once, so setup does not look like a load
	// test of its own (and does not trip a server's rate limits).
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			workers[i], errs[i] = newWorker(ctx, i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return workers, fmt.Errorf("prepare worker %d: %w", i, err)
		}
	}
	return workers, nil
}
