# The project's commands. The two a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
PYTHON ?= /usr/bin/python3
BIN := bin
BINARIES := http-oauth2-mock-server http-mcp-mock-server http-oauth2-client
FUZZTIME ?= 5s

.PHONY: all build test test-go test-py test-deps vet fmt-check fuzz fuzz-short demo bench keys \
        run-auth run-mcp run-client conformance clean

all: build

## build: compile the three binaries into bin/
build:
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do $(GO) build -o $(BIN)/$$b ./cmd/$$b || exit 1; done

## keys: generate the RSA signing key pair into keys/ (kept when present)
keys:
	@./scripts/setup_keys.sh keys

## test: everything CI proves: format, vet, Go tests with -race, short fuzzing, the pytest suites
## (browser included) and the official MCP conformance suite (server and client)
test: test-deps fmt-check vet test-go fuzz-short build test-py conformance

test-deps:
	@./scripts/install_test_deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 ./...
	@# Each benchmark once: one that breaks fails here, not only in make bench
	@# (only its failure is printed: the timings of one iteration mean nothing).
	@echo "$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./..."
	@out=$$($(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./... 2>&1) || { \
	  echo "$$out" | grep -vE '^(Benchmark|goos:|goarch:|pkg:|cpu:|PASS$$|ok )|no test files'; exit 1; }

test-py: build
	$(PYTHON) -m pytest tests -q -p no:cacheprovider

## fuzz-short / fuzz: run every fuzz target briefly (make test) or longer (FUZZTIME=5m make fuzz)
fuzz-short:
	@FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz:
	@FUZZTIME=$${FUZZTIME:-2m} ./scripts/fuzz.sh

## demo: build, start both servers, run the client's walk-through headless, stop them
demo: build
	@./scripts/demo.sh

## bench: Go benchmarks and the load tool against the running binaries
bench: build
	@./scripts/bench.sh

## conformance: the official MCP conformance suite against the server and the client
conformance: build
	@./scripts/conformance.sh

run-auth:
	$(GO) run ./cmd/http-oauth2-mock-server

run-mcp:
	$(GO) run ./cmd/http-mcp-mock-server

run-client:
	$(GO) run ./cmd/http-oauth2-client $(ARGS)

clean:
	rm -rf $(BIN) tests/.output
