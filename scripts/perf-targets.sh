#!/bin/sh
# Re-runs the issue-15 target measurements of docs/performance.md, one
# after the other, each bounded in time (timeout) and count (-benchtime),
# printing the load average before each. Usage:
#   scripts/perf-targets.sh [name...]   (default: all; names below)
# Needs redis-server on PATH for the Redis cases (scripts/install-test-peers.sh).
set -u
cd "$(dirname "$0")/.."
run() {
	name=$1; shift
	echo "== $name  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
	timeout 600 "$@" 2>&1 | grep -E '^(Benchmark|FAIL|--- FAIL|ok|panic)' || true
}
bench() { # package, regexp, benchtime, [env...]
	pkg=$1 re=$2 bt=$3; shift 3
	run "$re" env "$@" go test -run '^$' -bench "$re" -benchtime "$bt" -timeout 600s "$pkg"
}
SEL=" $* "
sel() { [ "$SEL" = "  " ] || case "$SEL" in *" $1 "*) ;; *) return 1;; esac; }

# server-memory runs only when named (it starts a server on ports 18491/15491).
sel routing && bench ./routing/ 'FactThroughput(Floor)?$' 5000x
sel floor-memory && bench ./routing/ 'FloorMemory' 1x FLOOR_AGENTS=10000 FLOOR_CALLS=5000
sel fanout && bench ./api/ 'EventsFanOut/(memory|redis)/paced-50eps/clients-process' 1000x
sel fanout-max && bench ./api/ 'EventsFanOut/(memory|redis)/max/clients-process' 1000x
sel ingest && bench ./presence/ 'StatusIngest' 30000x
sel agents-list && bench ./api/ 'ListAgentsUnderChanges' 200x
sel ari && bench ./ari/ 'E2EInboundCall' 2000x
# The whole server (HTTP, SSE, SIP, reports projector) with 10,000 agents
# and 5,000 live calls: 125 calls/s for 40 s through the built-in SIP path
# (signalling mode), each talking 100 s; the load tool reads the server's
# RSS from /proc. GOMEMLIMIT, if set, reaches the server.
server_memory() {
	dir=$(mktemp -d)
	go build -o "$dir/callfloor" ./cmd/callfloor && go build -o "$dir/load" ./cmd/callfloor-load || return
	"$dir/load" -write-floor 10000 >"$dir/floor.yaml" || return
	CALLFLOOR_CONFIG="$dir/floor.yaml" CALLFLOOR_HTTP_ADDR=127.0.0.1:18491 CALLFLOOR_SIP_ADDR=127.0.0.1:15491 \
		"$dir/callfloor" >"$dir/server.log" 2>&1 &
	pid=$!
	sleep 10
	echo "== server-memory  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)  GOMEMLIMIT=${GOMEMLIMIT:-}"
	timeout 600 "$dir/load" -url http://127.0.0.1:18491 -sip 127.0.0.1:15491 -agents 10000 -call-rate 125 \
		-duration 40s -talk 100s -status-rate 0 -clients 10 -answer-delay 100ms -timeout 9m 2>&1 | tail -n 12
	kill "$pid"; wait "$pid"; rm -rf "$dir"
}
case "$SEL" in *" server-memory "*) server_memory;; esac
echo "== done  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
