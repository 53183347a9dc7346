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

sel routing && bench ./routing/ 'FactThroughput(Floor)?$' 5000x
sel floor-memory && bench ./routing/ 'FloorMemory' 1x FLOOR_AGENTS=10000 FLOOR_CALLS=5000
sel fanout && bench ./api/ 'EventsFanOut/(memory|redis)/paced-50eps/clients-process' 1000x
sel fanout-max && bench ./api/ 'EventsFanOut/(memory|redis)/max/clients-process' 1000x
sel ingest && bench ./presence/ 'StatusIngest' 30000x
sel agents-list && bench ./api/ 'ListAgentsUnderChanges' 200x
sel ari && bench ./ari/ 'E2EInboundCall' 2000x
echo "== done  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
