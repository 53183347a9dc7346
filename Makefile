# callfloor — common tasks. `make test` is what CI runs.
GO ?= go
PKGS ?= ./...

.PHONY: run test test-short peers vet fmt fuzz bench build

run: ## serve the demo floor (in-memory store, built-in SIP path, dashboard)
	$(GO) run ./cmd/callfloor

build:
	$(GO) build -o bin/callfloor ./cmd/callfloor

peers: ## install redis-server, sipp, chromium, postgresql with apt-get when missing
	./scripts/install-test-peers.sh

# The whole suite against real peers. CALLFLOOR_REQUIRE_PEERS=1 turns a
# missing peer into a failure instead of a skip.
test: peers
	$(GO) mod download
	$(GO) vet $(PKGS)
	CALLFLOOR_REQUIRE_PEERS=1 $(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short: ## quick loop for development: peers optional, no race detector
	$(GO) test -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; done

BENCH ?= .
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
bench: ## benchmarks (BENCH=regexp, BENCHTIME, BENCHCOUNT runs each, for benchstat); docs/performance.md has each command
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(PKGS) | tee bench.out
