# tests/bench/lib-bench.sh — what the usage benchmarks (run-ingest,
# run-import) share: an optimized build, throw-away services with production
# settings, a billing-api, an organization with 12 customers and 4 metrics,
# and the teardown.  Sourced; sets BENCH_BASE, BENCH_TOKEN, BENCH_ORG,
# BENCH_CUST0, BENCH_MIDS, API_PID.
# shellcheck shell=bash
ML_LOG_PREFIX=${ML_LOG_PREFIX:-'[bench]'}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

SVC=$ML_ROOT/scripts/svc
BUILD=${ML_BENCH_BUILD:-$ML_ROOT/build-bench}
BENCH_DIR=$ML_ROOT/tests/bench
API_BIN=$BUILD/api/billing-api
WORKER_BIN=$BUILD/worker/billing-worker
BENCH_VAR=""
API_PID=""
WK_PID=""

bench_usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$1"; }
now_s() { date +%s.%N; }
py_sub() { python3 -c "print($1 - $2)"; }
psql_q() { psql -X -q -t -A "$BILLING_DATABASE_URL" -c "$1"; }

bench_teardown() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [[ -n $WK_PID ]] && { kill "$WK_PID" 2>/dev/null; wait "$WK_PID" 2>/dev/null || true; }
  [[ -n $API_PID ]] && { kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null || true; }
  if [[ -n $BENCH_VAR ]]; then
    "$SVC" redis stop >/dev/null 2>&1 || warn "could not stop Redis"
    "$SVC" pg stop >/dev/null 2>&1 || warn "could not stop PostgreSQL"
    if [[ ${ML_KEEP:-0} == 1 ]]; then log "kept $BENCH_VAR (ML_KEEP=1)"; else ml_wipe_var; fi
  fi
  exit "$rc"
}

# Build billing-api, billing-worker and the extra targets "$@"
# (RelWithDebInfo) into $BUILD.
bench_build() {
  log "building $BUILD (RelWithDebInfo)"
  cmake -S "$ML_ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
    --log-level=WARNING >&2 || die "cmake configure failed"
  cmake --build "$BUILD" -j "$(nproc)" --target billing-api billing-worker "$@" >&2 ||
    die "build failed"
}

# PostgreSQL + Redis (appendonly, appendfsync always) on free ports, migrated,
# and a billing-api; then the benchmark organization.
bench_start() {
  trap bench_teardown EXIT
  trap 'exit 130' INT TERM HUP
  BENCH_VAR=$(mktemp -d "${TMPDIR:-/tmp}/meterline-bench.XXXXXX")
  chmod 755 -- "$BENCH_VAR"
  ML_VAR=$BENCH_VAR
  ML_PG_PORT=$(pick_free_port)
  ML_REDIS_PORT=$(pick_free_port "$ML_PG_PORT")
  export ML_VAR ML_PG_PORT ML_REDIS_PORT
  "$SVC" pg start >&2
  "$SVC" pg createdb bench >&2
  "$SVC" redis start >&2
  BILLING_DATABASE_URL=$("$SVC" pg url bench)
  BILLING_REDIS_URL=redis://127.0.0.1:$ML_REDIS_PORT/0
  BILLING_STORAGE_DIR=$ML_VAR/storage
  local port i m
  port=$(pick_free_port "$ML_REDIS_PORT")
  BILLING_LISTEN=127.0.0.1:$port
  BILLING_LOG_LEVEL=${BILLING_LOG_LEVEL:-warn}
  export BILLING_DATABASE_URL BILLING_REDIS_URL BILLING_STORAGE_DIR BILLING_LISTEN BILLING_LOG_LEVEL
  "$API_BIN" migrate >"$ML_VAR/log/migrate.log" 2>&1 || die "migrate failed"
  "$API_BIN" >"$ML_VAR/log/api.log" 2>&1 &
  API_PID=$!
  BENCH_BASE=http://127.0.0.1:$port
  for i in $(seq 100); do curl -fsS "$BENCH_BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  BENCH_TOKEN=$(curl -fsS -H 'Content-Type: application/json' "$BENCH_BASE/v1/signup" \
    -d '{"org_name":"Bench Trucking","name":"Bench","email":"bench@example.test","password":"bench-password-1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  for i in $(seq 12); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $BENCH_TOKEN" -H 'Content-Type: application/json' \
      "$BENCH_BASE/v1/customers" -d "{\"external_id\":\"site-$(printf %05d "$i")\",\"name\":\"Site $i\"}"
  done
  for m in api_calls vm_uptime_minutes storage_gb_hours trips; do
    curl -fsS -o /dev/null -H "Authorization: Bearer $BENCH_TOKEN" -H 'Content-Type: application/json' \
      "$BENCH_BASE/v1/metrics" -d "{\"code\":\"$m\",\"name\":\"$m\",\"aggregation\":\"sum\"}"
  done
  BENCH_ORG=$(psql_q "SELECT id FROM organizations WHERE name = 'Bench Trucking'")
  BENCH_CUST0=$(psql_q "SELECT min(id) FROM customers WHERE org_id = $BENCH_ORG")
  BENCH_MIDS=$(psql_q "SELECT string_agg(code || '=' || id, ' ' ORDER BY id) FROM metrics WHERE org_id = $BENCH_ORG")
}

# billing-worker with $1 processes, its log in the temp dir.
bench_workers() {
  BILLING_WORKERS=$1 "$WORKER_BIN" >"$ML_VAR/log/worker.log" 2>&1 &
  WK_PID=$!
  sleep 1
}
