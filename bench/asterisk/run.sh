#!/usr/bin/env bash
# Side-by-side bench of callfloor over ARI against Asterisk's own app_queue
# on one real Asterisk (bench/asterisk/README.md). Self-contained and
# bounded: every run restarts Asterisk with the bench configuration, and
# everything the script starts is stopped by its own pid when it ends.
#
#   REAL=/tmp/real bench/asterisk/run.sh            # 20, 100, 200 calls/s
#   RATES="100" CALLS=2000 SIDES=callfloor bench/asterisk/run.sh
#
# Settings (environment):
#   REAL       install root holding asterisk/ (sbin/asterisk, etc/asterisk) — required
#   RATES      offered calls/s, one run per rate and side   (default "20 100 200")
#   CALLS      calls per run                                (default 2000)
#   AGENTS     agent phones, each answering after 200 ms    (default 50)
#   TALK_MS    the caller hangs up this long after answer   (default 1000)
#   SIDES      app_queue and/or callfloor                   (default "app_queue callfloor")
#   STORE      callfloor's store: memory or redis           (default memory)
#   WAIT_MODE  callfloor queue's wait_mode: ringback or music (default ringback, as app_queue's Queue(,r))
#   CALLFLOOR_GOMAXPROCS  GOMAXPROCS for callfloor (default: Go's, one per core); 1 is
#              what README.md advises where callfloor shares a small machine with Asterisk
#   OUT        where traces and logs go                     (default a new /tmp/cfbench.XXXXXX)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${REAL:?set REAL to the install root holding asterisk/ (see bench/asterisk/README.md)}"
RATES=${RATES:-"20 100 200"}
CALLS=${CALLS:-2000}
AGENTS=${AGENTS:-50}
TALK_MS=${TALK_MS:-1000}
SIDES=${SIDES:-"app_queue callfloor"}
STORE=${STORE:-memory}
WAIT_MODE=${WAIT_MODE:-ringback}
CALLFLOOR_GOMAXPROCS=${CALLFLOOR_GOMAXPROCS:-}
CALLFLOOR_BIN=${CALLFLOOR_BIN:-}  # a prebuilt callfloor (another commit, for A/B runs); default: built from this checkout
OUT=${OUT:-$(mktemp -d /tmp/cfbench.XXXXXX)}
mkdir -p "$OUT"

AST_BIN=$REAL/asterisk/sbin/asterisk
AST_ETC=$REAL/asterisk/etc/asterisk
AGENTS_ADDR=127.0.0.1:7000   # the agents' sipp: every agent's contact
CF_HTTP=127.0.0.1:18080
CF_METRICS=127.0.0.1:18081
REDIS_PORT=18379
TICK=$(getconf CLK_TCK)
HOTLINE_QUEUE=+842873009998    # extensions.conf: Queue(bench,r)
HOTLINE_CALLFLOOR=+842873009999 # extensions.conf: Stasis(callfloor,...)

for bin in "$AST_BIN" sipp curl go; do
  command -v "$bin" >/dev/null || { echo "run.sh: $bin not found" >&2; exit 2; }
done
[ "$STORE" = memory ] || [ "$STORE" = redis ] || { echo "run.sh: STORE is memory or redis" >&2; exit 2; }
[ "$STORE" = memory ] || command -v redis-server >/dev/null || { echo "run.sh: redis-server not found" >&2; exit 2; }

# Only one media server at a time on this machine (SIP 5060, ARI 8088).
busy() { ss -Hln "( sport = :$1 )" 2>/dev/null | grep -q .; }
for port in 5060 8088 7000 18080 18081; do
  if busy "$port"; then echo "run.sh: port $port is in use (another Asterisk/FreeSWITCH or bench?); stop it first" >&2; exit 2; fi
done

echo "building callfloor and tally into $OUT" >&2
if [ -n "$CALLFLOOR_BIN" ]; then
  cp "$CALLFLOOR_BIN" "$OUT/callfloor"
else
  (cd "$repo" && go build -o "$OUT/callfloor" ./cmd/callfloor)
fi
(cd "$repo" && go build -o "$OUT/tally" ./bench/asterisk/tally)

# Processes this script started, stopped on exit whatever happens.
pids=()
ast_conf=""
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  if [ -n "$ast_conf" ]; then stop_asterisk; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

agent_id() { printf 'l%05d' "$1"; }

# write_asterisk_conf DIR: the real install's stock files, the repo's
# HTTP/ARI/MOH/modules/Stasis files, and the bench's SIP, dialplan and queue, with
# run-private log, run, and database directories.
write_asterisk_conf() {
  local d=$1
  mkdir -p "$d/etc" "$d/log" "$d/run" "$d/db"
  cp -r "$AST_ETC/." "$d/etc/"
  for f in http.conf ari.conf musiconhold.conf modules.conf stasis.conf; do cp "$repo/asterisk-conf/$f" "$d/etc/$f"; done
  for f in extensions.conf queues.conf pjsip.conf; do cp "$here/conf/$f" "$d/etc/$f"; done
  sed -i -e "s#^astetcdir *=>.*#astetcdir => $d/etc#" -e "s#^astlogdir *=>.*#astlogdir => $d/log#" \
         -e "s#^astrundir *=>.*#astrundir => $d/run#" -e "s#^astdbdir *=>.*#astdbdir => $d/db#" "$d/etc/asterisk.conf"
  grep -q "^astetcdir => $d/etc" "$d/etc/asterisk.conf" || { echo "run.sh: cannot point asterisk.conf at $d/etc" >&2; exit 1; }
  for i in $(seq 1 "$AGENTS"); do
    local a; a=$(agent_id "$i")
    printf '\n[%s](b-agent)\naors = %s\ncallerid = "%s" <%s>\n[%s](b-aor)\n' "$a" "$a" "$a" "$a" "$a" >>"$d/etc/pjsip.conf"
    printf 'member => PJSIP/%s\n' "$a" >>"$d/etc/queues.conf"
  done
}

ast() { "$AST_BIN" -C "$ast_conf" "$@"; }
ast_pid() { cat "$(dirname "$ast_conf")/../run/asterisk.pid" 2>/dev/null; }

start_asterisk() {
  ast_conf=$1/etc/asterisk.conf
  ast >"$1/start.log" 2>&1 || { echo "run.sh: asterisk failed to start ($1/start.log)" >&2; exit 1; }
  for _ in $(seq 1 60); do
    if ast -rx "core show uptime" 2>/dev/null | grep -q 'System uptime' &&
       curl -sf -m 3 -u callfloor:callfloor http://127.0.0.1:8088/ari/asterisk/info >/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "run.sh: asterisk not ready after 60 s ($1/log)" >&2; exit 1
}

stop_asterisk() {
  local pid; pid=$(ast_pid)
  ast -rx "core stop now" >/dev/null 2>&1 || true
  if [ -n "$pid" ]; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null && [ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$AST_BIN")" ]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  ast_conf=""
}

# cpu PID: user+system seconds the process has used (0 if gone).
cpu() {
  local f; f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  f=${f##*) }
  awk -v t="$TICK" '{ printf "%.3f\n", ($12 + $13) / t }' <<<"$f"
}

# metric NAME: the sum of every series of a callfloor counter.
metric() {
  curl -sf -m 5 "http://$CF_METRICS/metrics" | awk -v n="$1" 'index($0, n"{") == 1 || $1 == n { s += $NF } END { printf "%.0f\n", s }'
}

api() { curl -sf -m 5 -H "Authorization: Bearer bench-admin" "$@"; }

write_floor() {
  {
    echo "# callfloor bench floor (bench/asterisk/README.md): $AGENTS agents, queue bench."
    echo "http_addr: $CF_HTTP"
    echo "metrics_addr: $CF_METRICS"
    echo "data_dir: $1/data"
    echo "timezone: UTC"
    echo "heartbeat_ttl_seconds: 600"
    echo "default_queue: bench"
    echo "groups:"
    echo "  - {id: bench, name: Bench}"
    echo "agents:"
    echo "  - {id: bench-admin, name: Bench Admin, email: bench-admin@example.com, phone: \"+842873000199\", role: admin, groups: [], distribution: app, token: bench-admin}"
    for i in $(seq 1 "$AGENTS"); do
      local a; a=$(agent_id "$i")
      printf '  - {id: %s, name: Agent %s, email: %s@example.com, phone: "+8490%07d", role: agent, groups: [bench], distribution: app, token: bench-%s}\n' "$a" "$a" "$a" "$i" "$a"
    done
    echo "queues:"
    echo "  - {id: bench, name: Bench, hotlines: [\"$HOTLINE_CALLFLOOR\"], members: [bench], strategy: round_robin, ring_timeout_seconds: 18, wrapup_seconds: 0, service_level_seconds: 20, wait_mode: $WAIT_MODE}"
  } >"$1/floor.yaml"
}

# start_callfloor DIR: callfloor on the bench floor, every agent available.
start_callfloor() {
  local d=$1
  write_floor "$d"
  local env=(CALLFLOOR_CONFIG="$d/floor.yaml" CALLFLOOR_ARI_URL=http://127.0.0.1:8088/ari
    CALLFLOOR_ARI_USER=callfloor CALLFLOOR_ARI_PASSWORD=callfloor CALLFLOOR_ARI_APP=callfloor)
  [ -z "$CALLFLOOR_GOMAXPROCS" ] || env+=(GOMAXPROCS="$CALLFLOOR_GOMAXPROCS")
  if [ "$STORE" = redis ]; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$d/redis.log" 2>&1 &
    redis_pid=$!; pids+=("$redis_pid")
    for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    env+=(CALLFLOOR_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0)
  fi
  env "${env[@]}" "$OUT/callfloor" >"$d/callfloor.log" 2>&1 &
  cf_pid=$!; pids+=("$cf_pid")
  for _ in $(seq 1 60); do api "http://$CF_HTTP/v1/queues/bench" >/dev/null 2>&1 && break; sleep 0.5; done
  for i in $(seq 1 "$AGENTS"); do
    local a; a=$(agent_id "$i")
    curl -sf -m 5 -X PUT -H "Authorization: Bearer bench-$a" -H 'Content-Type: application/json' \
      -d '{"call_status":"available"}' "http://$CF_HTTP/v1/agents/$a/status" >/dev/null ||
      { echo "run.sh: cannot make $a available ($d/callfloor.log)" >&2; exit 1; }
  done
  local avail=""
  for _ in $(seq 1 60); do
    avail=$(api "http://$CF_HTTP/v1/queues/bench" | sed -n 's/.*"agents_available":\([0-9]*\).*/\1/p')
    [ "$avail" = "$AGENTS" ] && return 0
    sleep 0.5
  done
  echo "run.sh: only ${avail:-0} of $AGENTS agents available in callfloor after 30 s ($d/callfloor.log)" >&2; exit 1
}

# one SIDE RATE: one run, one table row on stdout.
one() {
  local side=$1 rate=$2 d="$OUT/$1-$2"
  rm -rf "$d"; mkdir -p "$d"
  local load0; load0=$(cut -d' ' -f1 /proc/loadavg)
  write_asterisk_conf "$d/ast"
  start_asterisk "$d/ast"
  local apid; apid=$(ast_pid)

  sipp -sf "$here/sipp/agents.xml" -i 127.0.0.1 -p "${AGENTS_ADDR#*:}" -mi 127.0.0.1 -mp 16000 -nostdin \
    -trace_msg -message_file "$d/agents.msg" -trace_err -error_file "$d/agents.err" >"$d/agents.out" 2>&1 </dev/null &
  local sp=$!; pids+=("$sp")
  for i in $(seq 1 "$AGENTS"); do echo "$(agent_id "$i");$AGENTS_ADDR"; done | { echo SEQUENTIAL; cat; } >"$d/agents.csv"
  timeout 60 sipp -sf "$here/sipp/register.xml" -inf "$d/agents.csv" -i 127.0.0.1 -p 7001 -m "$AGENTS" -r 50 \
    -nostdin -timeout 50s -timeout_error 127.0.0.1:5060 >"$d/register.out" 2>&1 </dev/null ||
    { echo "run.sh: registering the agents failed ($d/register.out)" >&2; exit 1; }

  local hotline=$HOTLINE_QUEUE cf_pid="" redis_pid=""
  if [ "$side" = callfloor ]; then
    hotline=$HOTLINE_CALLFLOOR
    start_callfloor "$d"
  fi
  # Let the set-up settle (agents made available, their events projected
  # into reports) so that the CPU figures are the calls' alone.
  sleep 3
  local a0 c0=0 r0=0 e0=0 q0=0
  a0=$(cpu "$apid")
  if [ -n "$cf_pid" ]; then
    c0=$(cpu "$cf_pid"); e0=$(metric callfloor_media_events_total); q0=$(metric callfloor_media_requests_total)
  fi
  [ -z "$redis_pid" ] || r0=$(cpu "$redis_pid")

  # The caller: CALLS calls at RATE, each ending by itself (30 s to be
  # answered, TALK_MS of talk); the whole run is bounded on top of that.
  local bound=$(( CALLS / rate + 60 ))
  timeout $((bound + 10)) sipp -sf "$here/sipp/caller.xml" -s "$hotline" -i 127.0.0.1 -p 7002 -mi 127.0.0.1 -mp 17000 \
    -r "$rate" -m "$CALLS" -l $((CALLS)) -d "$TALK_MS" -nostdin -timeout "${bound}s" \
    -trace_msg -message_file "$d/caller.msg" -trace_err -error_file "$d/caller.err" \
    -trace_stat -stf "$d/caller.csv" 127.0.0.1:5060 >"$d/caller.out" 2>&1 </dev/null &
  local cp=$!; pids+=("$cp")
  wait "$cp" || true # in the background so that a signal stops the run at once

  local a1 c1=-1 r1=-1 e1=-1 q1=-1
  a1=$(cpu "$apid")
  if [ -n "$cf_pid" ]; then
    c1=$(cpu "$cf_pid"); e1=$(metric callfloor_media_events_total); q1=$(metric callfloor_media_requests_total)
  fi
  [ -z "$redis_pid" ] || r1=$(cpu "$redis_pid")
  local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
  # Asterisk's queues over the run (processed, max depth): the profile.
  ast -rx "core show taskprocessors" >"$d/taskprocessors.txt" 2>/dev/null || true
  local tp stasis refused
  tp=$(grep -c 'queue reached' "$d/ast/log/messages.log" 2>/dev/null || true)
  stasis=$(grep -c 'not in Stasis' "$d/callfloor.log" 2>/dev/null || true)
  # Turned away by the ARI path (event lag) or by routing (its loops late).
  refused=$( [ -n "$cf_pid" ] && echo $(( $(metric callfloor_media_calls_refused_total) + $(metric callfloor_routing_calls_refused_total) )) || echo 0)
  # Where the events and requests went (profile for docs/performance.md).
  [ -z "$cf_pid" ] || curl -sf -m 5 "http://$CF_METRICS/metrics" | grep -E '^callfloor_(media_(events|requests)_total|media_command_seconds|media_event_lag_seconds|routing_(dispatch_passes_total|loop_delay_seconds|calls_refused_total))' >"$d/media-metrics.txt" || true

  cleanup
  local note="load ${load0}→${load1}; taskprocessor warnings ${tp:-0}"
  [ "$side" = callfloor ] && note+="; not in Stasis ${stasis:-0}; refused ${refused:-0}"
  local args=(-side "$side" -rate "$rate" -caller "$d/caller.msg" -agents "$d/agents.msg"
    -asterisk-cpu "$(awk -v a="$a0" -v b="$a1" 'BEGIN{print b-a}')" -note "$note")
  if [ "$side" = callfloor ]; then
    args+=(-callfloor-cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')"
      -events "$((e1 - e0))" -requests "$((q1 - q0))")
    [ -z "$redis_pid" ] || args+=(-redis-cpu "$(awk -v a="$r0" -v b="$r1" 'BEGIN{print b-a}')")
  fi
  "$OUT/tally" "${args[@]}"
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); Asterisk $("$AST_BIN" -V 2>/dev/null); $AGENTS agents answering after 200 ms, $CALLS calls per run, talk ${TALK_MS} ms, callfloor store $STORE, wait_mode $WAIT_MODE, GOMAXPROCS ${CALLFLOOR_GOMAXPROCS:-default}; traces in $OUT"
"$OUT/tally" -header
for rate in $RATES; do
  for side in $SIDES; do
    one "$side" "$rate"
  done
done
