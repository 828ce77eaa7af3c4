#!/usr/bin/env bash
# `make demo`: start the authorization server and the MCP server, wait until
# both are ready, run the client's walk-through headless, show the audit
# record it left, and stop both servers however the script ends (a failed
# step, Ctrl-C, or success).
#
# Ports come from DEMO_AUTH_PORT / DEMO_MCP_PORT (defaults 3002 / 3003) so a
# test can run the demo on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

AUTH_PORT="${DEMO_AUTH_PORT:-3002}"
MCP_PORT="${DEMO_MCP_PORT:-3003}"
BIN="${BIN:-bin}"
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mcp-oauth2-demo.XXXXXX")"
AUDIT_FILE="${DEMO_AUDIT_FILE:-logs/audit.jsonl}"
pids=()

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo
    echo "demo failed (exit $status). Server logs:"
    for f in "$RUN_DIR"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
  fi
  rm -rf "$RUN_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() {
  # bash's /dev/tcp connects only when something listens there.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_ready() {
  local name=$1 url=$2 pid=$3
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $name exited during start-up; its log:"; tail -n 20 "$RUN_DIR/$name.log"; return 1
    fi
    if curl -fsS -m 1 -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "error: $name not ready at $url after 10 s"; return 1
}

for p in "$AUTH_PORT" "$MCP_PORT"; do
  if ! port_free "$p"; then
    echo "error: port $p on 127.0.0.1 is already in use (another demo or server running?)."
    echo "       stop it, or run with DEMO_AUTH_PORT=… DEMO_MCP_PORT=… make demo"
    exit 1
  fi
done

[ -s keys/private_key.pem ] || ./scripts/setup_keys.sh keys

ISSUER="http://localhost:$AUTH_PORT"
RESOURCE="http://localhost:$MCP_PORT/mcp"

bold "Starting the authorization server on $ISSUER"
AUTH_SERVER_LISTEN="127.0.0.1:$AUTH_PORT" AUTH_SERVER_ISSUER="$ISSUER" \
  "$BIN/http-oauth2-mock-server" >"$RUN_DIR/http-oauth2-mock-server.log" 2>&1 &
pids+=($!)
wait_ready http-oauth2-mock-server "http://127.0.0.1:$AUTH_PORT/healthz" "${pids[-1]}"

bold "Starting the MCP server on $RESOURCE"
mkdir -p "$(dirname "$AUDIT_FILE")"
MCP_SERVER_LISTEN="127.0.0.1:$MCP_PORT" MCP_SERVER_RESOURCE="$RESOURCE" MCP_AUTH_ISSUER="$ISSUER" \
  MCP_AUDIT_FILE="$AUDIT_FILE" \
  "$BIN/http-mcp-mock-server" >"$RUN_DIR/http-mcp-mock-server.log" 2>&1 &
pids+=($!)
wait_ready http-mcp-mock-server "http://127.0.0.1:$MCP_PORT/readyz" "${pids[-1]}"
echo

# Count the audit lines already there, so the tour shows only this run's record.
audit_before=0
[ -f "$AUDIT_FILE" ] && audit_before=$(wc -l <"$AUDIT_FILE")

bold "Running the client's walk-through (headless login as alice; secrets masked)"
"$BIN/http-oauth2-client" --server "$RESOURCE" --mode headless --login-hint alice \
  --token-file "$RUN_DIR/tokens.json" demo
echo

bold "[9] Audit record (what the MCP server attributed to alice; the token itself is never logged, only its jti)"
echo "    $AUDIT_FILE:"
record=$(tail -n +"$((audit_before + 1))" "$AUDIT_FILE" | grep '"tool":"whoami"' | tail -n 1 || true)
if [ -z "$record" ]; then
  echo "error: the MCP server wrote no audit record for the whoami call"
  exit 1
fi
echo "$record"
echo
bold "Where to look next"
cat <<TXT
  - the audit log:          $AUDIT_FILE   (or GET http://localhost:$MCP_PORT/audit-logs with an mcp:audit token: see README.md)
  - the login page:         set mock.auto_approve = false in config/auth_server_config.toml (or AUTH_MOCK_AUTO_APPROVE=false),
                            run 'make run-auth' and 'make run-mcp', then
                            'go run ./cmd/http-oauth2-client login' opens the consent page in your browser
  - every endpoint by hand: README.md (curl examples)
  - the flow explained:     docs/OAUTH2_FLOW.md;  the threat model: docs/SECURITY.md
  - your own server/client: docs/INTEGRATION.md; 'go run ./cmd/http-oauth2-client probe --target URL'
TXT
echo
echo "Both servers stop now."
