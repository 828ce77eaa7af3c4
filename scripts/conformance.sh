#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance,
# pinned with the Node 22 it needs in tests/conformance/package-lock.json)
# against this project's binaries:
#   server  bin/http-mcp-mock-server on a free loopback port, auth switched off
#           (the suite sends no credentials), the scenarios that apply to it;
#   client  bin/http-oauth2-client conformance, every scenario of the `core` suite;
#   draft   the client `draft` suite, reported but never failing the run.
# Each scenario runs on its own (`--scenario`) so the suite's verdict includes the
# client's exit status and timeouts, which its parallel `--suite` mode ignores.
# Results: tests/.output/conformance/ (summary.md, summary.json, one folder per
# scenario with the suite's checks.json and logs). Exit 1 when a required
# scenario fails, 2 when the run itself could not happen. See
# tests/conformance/README.md.
#
# Environment:
#   CONFORMANCE_PARTS       which parts to run (default "server client draft")
#   CONFORMANCE_SCENARIOS   only these scenario names (space separated; default all)
#   CONFORMANCE_JOBS        scenarios run at once (default 4)
#   CONFORMANCE_TIMEOUT_MS  the suite's per-client-run timeout (default 30000)
#   CONFORMANCE_SERVER_BIN, CONFORMANCE_CLIENT_BIN
#                           other builds to test (default bin/...); the client
#                           is run as "<bin> conformance <url>"
#   CONFORMANCE_OUT         results folder (default tests/.output/conformance)
# Two runs from one checkout do not overlap: the second waits (a lock).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONF="$ROOT/tests/conformance"
NODE="$CONF/node_modules/node/bin/node"
CLI="$CONF/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SERVER_BIN="${CONFORMANCE_SERVER_BIN:-$ROOT/bin/http-mcp-mock-server}"
CLIENT_BIN="${CONFORMANCE_CLIENT_BIN:-$ROOT/bin/http-oauth2-client}"
OUT="${CONFORMANCE_OUT:-$ROOT/tests/.output/conformance}"
PARTS="${CONFORMANCE_PARTS:-server client draft}"
ONLY="${CONFORMANCE_SCENARIOS:-}"
JOBS="${CONFORMANCE_JOBS:-4}"
TIMEOUT_MS="${CONFORMANCE_TIMEOUT_MS:-30000}"
# Outer bounds (seconds) in case the suite itself hangs: it has no timeout in
# server mode, and its client timeout does not cover its own mock servers.
SERVER_SCENARIO_LIMIT=60
CLIENT_SCENARIO_LIMIT=$(( TIMEOUT_MS / 1000 + 30 ))

# The server scenarios that apply to an MCP server without the reference
# "everything" server's fixtures (test_* tools, test:// resources); issue 3.
SERVER_SCENARIOS=(server-initialize ping tools-list logging-set-level resources-list
  prompts-list server-sse-multiple-streams dns-rebinding-protection)
# The client `core` suite of 0.1.16 (`conformance client --suite core`); the
# script checks the installed suite still lists each of them.
CLIENT_CORE_SCENARIOS=(initialize tools_call elicitation-sep1034-client-defaults sse-retry
  auth/metadata-default auth/metadata-var1 auth/metadata-var2 auth/metadata-var3
  auth/basic-cimd auth/scope-from-www-authenticate auth/scope-from-scopes-supported
  auth/scope-omitted-when-undefined auth/scope-step-up auth/scope-retry-limit
  auth/token-endpoint-auth-basic auth/token-endpoint-auth-post auth/token-endpoint-auth-none
  auth/pre-registration)
# The client `draft` suite of 0.1.16: informational.
CLIENT_DRAFT_SCENARIOS=(auth/resource-mismatch auth/offline-access-scope
  auth/offline-access-not-supported)

SERVER_PID=
SERVER_WORK=
RUN_PIDS=()

log() { echo "conformance: $*" >&2; }
die() { echo "conformance: error: $*" >&2; exit 2; }

cleanup() {
  local pid
  # A runner's child is `timeout`, which passes the signal on to the suite and
  # the client it started (its own process group).
  for pid in "${RUN_PIDS[@]}"; do
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  stop_server
  [ -n "$SERVER_WORK" ] && rm -rf "$SERVER_WORK"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# install_suite runs `npm ci` when node_modules is missing or was installed from
# another lockfile; a stamp of package.json + package-lock.json makes it idempotent.
install_suite() {
  local stamp want
  stamp="$CONF/node_modules/.conformance-stamp"
  want=$(cat "$CONF/package.json" "$CONF/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ -x "$NODE" ] && [ -f "$CLI" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm not found: it is needed once to install tests/conformance"
  log "installing the pinned suite and Node 22 into tests/conformance/node_modules (npm ci)"
  local npmlog
  npmlog=$(mktemp)
  if ! (cd "$CONF" && npm ci --no-audit --no-fund --loglevel=error) >"$npmlog" 2>&1 9>&-; then
    cat "$npmlog" >&2
    rm -f "$npmlog"
    die "npm ci failed in tests/conformance"
  fi
  rm -f "$npmlog"
  [ -x "$NODE" ] || die "the node package did not install its binary at $NODE (were install scripts blocked?)"
  echo "$want" >"$stamp"
}

check_node() {
  local v
  v=$("$NODE" -p 'process.versions.node + (typeof require("fs").globSync === "function" ? "" : " (no fs.globSync)")')
  case "$v" in
    22.*[0-9]) ;;
    *) die "tests/conformance needs Node 22 with fs.globSync, got $v" ;;
  esac
  echo "$v"
}

# check_scenarios fails when a listed scenario is not in the installed suite
# (a lockfile change that renamed one would otherwise pass silently).
check_scenarios() {
  local list s
  list=$("$NODE" "$CLI" list)
  for s in "${SERVER_SCENARIOS[@]}" "${CLIENT_CORE_SCENARIOS[@]}" "${CLIENT_DRAFT_SCENARIOS[@]}"; do
    grep -qE "^  - ${s}( |$)" <<<"$list" || die "scenario $s is not in the installed suite"
  done
}

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

free_port() {
  "$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server runs the MCP server from a temporary folder (its audit log and
# any relative path stay out of the repo) with a config that switches auth off;
# the MCP_* variables repeat it because the environment wins over the file.
start_server() {
  local port url i
  port=$(free_port)
  url="http://127.0.0.1:$port/mcp"
  SERVER_WORK=$(mktemp -d)
  cat >"$SERVER_WORK/mcp_server_config.toml" <<EOF
# Written by scripts/conformance.sh for the protocol conformance run only.
[server]
listen = "127.0.0.1:$port"
resource = "$url"

[auth]
# The suite sends no credentials. Never ship this.
enabled = false

[audit]
file = "$SERVER_WORK/audit.jsonl"
EOF
  (
    cd "$SERVER_WORK"
    while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^MCP_' || true)
    export MCP_SERVER_LISTEN="127.0.0.1:$port" MCP_SERVER_RESOURCE="$url" MCP_AUTH_ENABLED=false
    exec "$SERVER_BIN" --config "$SERVER_WORK/mcp_server_config.toml"
  ) >"$OUT/server.log" 2>&1 9>&- &
  SERVER_PID=$!
  for i in $(seq 1 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      SERVER_PID=
      cat "$OUT/server.log" >&2
      die "${SERVER_BIN#"$ROOT/"} exited at start (log above)"
    fi
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    [ "$i" = 100 ] && die "${SERVER_BIN#"$ROOT/"} not healthy on 127.0.0.1:$port after 10s"
    sleep 0.1
  done
  SERVER_URL=$url
  log "server: ${SERVER_BIN#"$ROOT/"} pid $SERVER_PID at $url (auth off)"
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local i
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# record writes what the summary reads: part, scenario, exit status, folder, seconds.
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >"$4/run.tsv"; }

run_server_scenario() {
  local s=$2 dir=$3 start=$SECONDS rc=0
  timeout -k 5 "$SERVER_SCENARIO_LIMIT" "$NODE" "$CLI" server --url "$SERVER_URL" --scenario "$s" \
    -o "$dir/results" >"$dir/run.log" 2>&1 || rc=$?
  record server "$s" "$rc" "$dir" $((SECONDS - start))
  log "server $s: exit $rc"
}

# run_client_scenario gives each run its own working folder (no config file:
# built-in defaults) and cache folder, and drops CLIENT_* overrides, so runs in
# parallel cannot share state and a developer's settings cannot change a result.
run_client_scenario() {
  local part=$1 s=$2 dir=$3 start=$SECONDS rc=0
  mkdir -p "$dir/cwd" "$dir/cache"
  (
    cd "$dir/cwd"
    while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^CLIENT_' || true)
    export XDG_CACHE_HOME="$dir/cache"
    exec timeout -k 5 "$CLIENT_SCENARIO_LIMIT" "$NODE" "$CLI" client --command "$CLIENT_BIN conformance" \
      --scenario "$s" --timeout "$TIMEOUT_MS" -o "$dir/results"
  ) >"$dir/run.log" 2>&1 || rc=$?
  record "$part" "$s" "$rc" "$dir" $((SECONDS - start))
  log "$part $s: exit $rc"
}

running() {
  local n=0 pid
  for pid in "${RUN_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && n=$((n + 1)); done
  echo "$n"
}

# run_part runs RUNNER for each wanted scenario, JOBS at a time (each scenario
# is its own MCP session, or its own mock servers in client mode), in a folder
# named after it; "order" keeps the start order for the summary.
run_part() {
  local part=$1 runner=$2 s dir pid
  shift 2
  RUN_PIDS=()
  for s in "$@"; do
    wanted "$s" || continue
    while [ "$(running)" -ge "$JOBS" ]; do wait -n || true; done
    dir="$OUT/$part/${s//\//_}"
    mkdir -p "$dir"
    printf '%s\t%s\n' "$part" "$dir" >>"$OUT/order"
    "$runner" "$part" "$s" "$dir" 9>&- &
    RUN_PIDS+=($!)
  done
  for pid in "${RUN_PIDS[@]}"; do wait "$pid" || true; done
  RUN_PIDS=()
}

# lock_out makes a second run from this checkout wait (bounded) for the first:
# they would share tests/conformance/node_modules (npm ci) and, by default, the
# results folder, which each run empties. Children do not inherit the lock, so
# a leftover process cannot hold it.
lock_out() {
  mkdir -p "$ROOT/tests/.output"
  exec 9>"$ROOT/tests/.output/.conformance.lock"
  if ! flock -n 9; then
    log "another conformance run is going on in this checkout; waiting (at most 15 minutes)"
    flock -w 900 9 || die "another conformance run still holds tests/.output/.conformance.lock"
  fi
}

main() {
  local t0=$SECONDS node_version s any
  lock_out
  install_suite
  node_version=$(check_node)
  check_scenarios
  # Only a folder this script wrote (it has "order") is ever emptied.
  if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -e "$OUT/order" ]; then
    die "$OUT is not empty and not a conformance results folder; choose another CONFORMANCE_OUT"
  fi
  rm -rf "$OUT"
  mkdir -p "$OUT"
  log "suite $("$NODE" "$CLI" --version) on node $node_version; results in ${OUT#"$ROOT/"}"

  if has_part server; then
    [ -x "$SERVER_BIN" ] || die "missing $SERVER_BIN: run make build first"
    any=0
    for s in "${SERVER_SCENARIOS[@]}"; do wanted "$s" && any=1; done
    if [ "$any" = 1 ]; then
      start_server
      run_part server run_server_scenario "${SERVER_SCENARIOS[@]}"
      kill -0 "$SERVER_PID" 2>/dev/null ||
        log "warning: the server exited during the run; see ${OUT#"$ROOT/"}/server.log"
      stop_server
    fi
  fi
  if has_part client || has_part draft; then
    [ -x "$CLIENT_BIN" ] || die "missing $CLIENT_BIN: run make build first"
    [[ "$CLIENT_BIN" != *" "* ]] || die "the suite splits --command on spaces: move the repo to a path without spaces"
  fi
  has_part client && run_part client run_client_scenario "${CLIENT_CORE_SCENARIOS[@]}"
  has_part draft && run_part draft run_client_scenario "${CLIENT_DRAFT_SCENARIOS[@]}"

  "$NODE" "$CONF/summarize.js" "$OUT" $((SECONDS - t0)) "${OUT#"$ROOT/"}"
}

main "$@"
