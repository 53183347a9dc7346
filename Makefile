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

bench: ## benchmarks, 6 runs each, for benchstat
	$(GO) test -run '^$$' -bench . -benchmem -count 6 $(PKGS) | tee bench.out
