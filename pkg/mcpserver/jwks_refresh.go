package mcpserver

// This file refreshes the JWKS (RFC 7517) when a token names a kid the cache
// does not hold, so a key rotation at the authorization server is picked up
// before the next periodic refresh. jwkset can do this itself, but it gives
// the rate-limiter wait and the fetch one shared deadline, the request's: under
// a flood of unknown kids, whichever request gets the next fetch slot has
// usually spent its deadline waiting, the fetch fails with "context deadline
// exceeded", and a real rotation is seen only after another rate-limit
// interval. Here the fetch runs in the background with the server's own
// context and fetch timeout; requests only trigger it and wait a short while.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// unknownKIDWaitMax bounds how long a request with an unknown kid waits for
// the refresh it triggered (or found in flight). A JWKS fetch normally takes
// milliseconds; a slower one still completes in the background and the
// token's next request is accepted.
const unknownKIDWaitMax = time.Second

// kidRefresher runs at most one JWKS refresh at a time, at most one per
// auth.unknown_kid_rate_limit, each with the server's context.
type kidRefresher struct {
	// ctx lives as long as the server; each fetch gets its own timeout from
	// fetch itself.
	ctx     context.Context
	fetch   func(ctx context.Context) error
	limiter *rate.Limiter
	clock   func() time.Time
	wait    time.Duration
	logger  *slog.Logger

	mu sync.Mutex
	// inflight is closed when the running refresh ends; nil when none runs.
	inflight chan struct{}
}

func newKIDRefresher(ctx context.Context, fetch func(context.Context) error, every time.Duration, clock func() time.Time, logger *slog.Logger) *kidRefresher {
	return &kidRefresher{
		ctx: ctx, fetch: fetch, limiter: rate.NewLimiter(rate.Every(every), 1),
		clock: clock, wait: unknownKIDWaitMax, logger: logger,
	}
}

// await starts a refresh if none runs and the rate limit allows one, then
// waits until the running refresh ends, r.wait passes or ctx ends, whichever
// is first. With no refresh running or allowed it returns at once. The caller
// looks the key up again afterwards: the refresh, if any, may have found it.
func (r *kidRefresher) await(ctx context.Context) {
	done := r.trigger()
	if done == nil {
		return
	}
	timer := time.NewTimer(r.wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// trigger returns the channel of the running refresh, starting one if the
// rate limit allows, or nil when none runs and none may start.
func (r *kidRefresher) trigger() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	if r.ctx.Err() != nil || !r.limiter.AllowN(r.clock(), 1) {
		return nil
	}
	done := make(chan struct{})
	r.inflight = done
	go r.run(done)
	return done
}

// running returns the channel of the refresh in flight, or nil.
func (r *kidRefresher) running() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight
}

func (r *kidRefresher) run(done chan struct{}) {
	err := r.fetch(r.ctx)
	if err != nil {
		r.logger.Warn("jwks refresh for unknown kid failed; keeping cached keys", "error", err)
	} else {
		r.logger.Debug("jwks refreshed for unknown kid")
	}
	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(done)
}
