# shellcheck shell=bash
# scripts/lib.sh — shared helpers for scripts/run, scripts/test and scripts/svc.
#
# Sourced, never executed. It sets no shell options of its own; the callers run
# with `set -euo pipefail`. Everything here is about the local development
# services (PostgreSQL 15 and Redis under $ML_VAR), packages and processes.
#
# Layout of $ML_VAR (default <repo>/var):
#   pg/        PostgreSQL data directory        (owned by `postgres` when we are root)
#   run/       PostgreSQL socket dir + pid files (the DSN's host=)
#   redis/     Redis data (AOF in redis/appendonlydir)
#   log/       postgresql.log redis.log api.log worker.log setup.log
#   storage/   BILLING_STORAGE_DIR (PDFs, CSV uploads)
#   redis.conf generated at every Redis start
#
# PostgreSQL refuses to run as root, so as root it runs as the `postgres` system
# user, which must be able to enter pg/ and run/. When it cannot (a checkout under
# /root, a 0700 home) or when the socket path would be too long for a Unix socket
# (108 bytes), pg/, run/ and the PostgreSQL log live in
# /tmp/meterline-<uid>-<hash of $ML_VAR>/ instead, and pg/ and run/ in $ML_VAR are
# symlinks to them. `pg_home` tells which of the two places is in use.

ML_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
ML_VAR=$(realpath -m -- "${ML_VAR:-$ML_ROOT/var}")
ML_PG_PORT=${ML_PG_PORT:-5433}
ML_REDIS_PORT=${ML_REDIS_PORT:-6380}
ML_START_TIMEOUT=${ML_START_TIMEOUT:-60}
ML_LOG_PREFIX=${ML_LOG_PREFIX:-[svc]}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export ML_VAR ML_PG_PORT ML_REDIS_PORT

# Packages every entry point needs (build, run, services, PDF checks).
# shellcheck disable=SC2034  # used by scripts/run and scripts/test
ML_PACKAGES=(build-essential cmake pkg-config libevent-dev libhiredis-dev
  libjansson-dev libpq-dev libhpdf-dev libsodium-dev libcsv-dev
  libcurl4-openssl-dev libcriterion-dev postgresql-15 postgresql-client-15
  redis-server poppler-utils fonts-dejavu-core curl)

umask 022

# ---------------------------------------------------------------- messages

# Messages never fail: a closed terminal must not stop a clean shutdown.
log()  { printf '%s %s\n' "$ML_LOG_PREFIX" "$*" >&2 || true; }
warn() { printf '%s warning: %s\n' "$ML_LOG_PREFIX" "$*" >&2 || true; }
die()  { printf '%s error: %s\n' "$ML_LOG_PREFIX" "$*" >&2; exit 1; }

# log_tail FILE [LINES] — show the end of a log file, indented, on stderr.
log_tail() {
  local file=$1 n=${2:-40}
  if [[ -s $file ]]; then
    printf '%s ---- last %s lines of %s ----\n' "$ML_LOG_PREFIX" "$n" "$file" >&2
    tail -n "$n" -- "$file" | sed 's/^/    /' >&2
    printf '%s ----\n' "$ML_LOG_PREFIX" >&2
  else
    printf '%s (%s is empty or missing)\n' "$ML_LOG_PREFIX" "$file" >&2
  fi
}

# human_secs N — "83s" → "1m23s"
human_secs() {
  local s=$1
  if (( s >= 60 )); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# ---------------------------------------------------------------- packages

# ensure_packages PKG... — install the Debian packages that are missing.
# As root: apt-get update once, then install. Otherwise print the sudo command.
ensure_packages() {
  local -a missing=()
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$pkg")
  done
  (( ${#missing[@]} == 0 )) && return 0
  if (( EUID != 0 )); then
    log "missing Debian packages: ${missing[*]}"
    log "install them with:"
    printf '\n    sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n\n' \
      "${missing[*]}" >&2
    exit 1
  fi
  log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
    || die "apt-get install failed (${missing[*]})"
}

# ---------------------------------------------------------------- processes

# pid_alive PID — the process exists and is not a zombie.
pid_alive() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ $state != Z ]]
}

# pid_is PID WORD — the process is alive and its command line contains WORD.
pid_is() {
  local pid=$1 word=$2 cmd
  pid_alive "$pid" || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  [[ $cmd == *"$word"* ]]
}

# read_pid FILE — print the pid stored in FILE (empty when none).
read_pid() {
  local pid=""
  if [[ -r $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
  [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
  return 0
}

# wait_gone PID SECONDS — wait until PID has exited; 1 on timeout.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_alive "$pid"; do
    (( SECONDS >= deadline )) && return 1
    sleep 0.2
  done
  return 0
}

# stop_pid NAME PID SECONDS — SIGTERM, wait, then SIGKILL the process group.
# The processes we start run in their own session (setsid), so the group is
# the supervisor and every child it forked.
stop_pid() {
  local name=$1 pid=$2 secs=$3
  if pid_alive "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$secs"; then
      warn "$name did not stop within ${secs}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
    fi
  fi
  # Children left behind by a supervisor that died first.
  kill -TERM -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- ports

# port_in_use PORT [HOST] — something accepts TCP connections on HOST:PORT.
port_in_use() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

# pick_free_port [EXCLUDED...] — a random port that nothing listens on.
pick_free_port() {
  local p x ok
  for _ in $(seq 1 200); do
    p=$(shuf -i 20000-32000 -n 1)
    ok=1
    for x in "$@"; do [[ $p == "$x" ]] && ok=0; done
    (( ok )) && ! port_in_use "$p" && { printf '%s\n' "$p"; return 0; }
  done
  die "could not find a free TCP port"
}

# urlencode STRING — percent-encode for a URL query value.
urlencode() {
  local LC_ALL=C s=$1 out="" c i
  for (( i = 0; i < ${#s}; i++ )); do
    c=${s:i:1}
    case $c in
      [a-zA-Z0-9/._~-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s\n' "$out"
}

# ---------------------------------------------------------------- $ML_VAR layout

# The user PostgreSQL runs as: ourselves, or `postgres` when we are root.
pg_os_user() { if (( EUID == 0 )); then echo postgres; else id -un; fi; }

# pg_as CMD... — run a PostgreSQL server program as pg_os_user.
pg_as() {
  if (( EUID == 0 )); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Where pg/, run/ and the PostgreSQL log really are (see the top of this file).
pg_home() {
  local target
  if [[ -L $ML_VAR/pg ]]; then
    target=$(readlink -- "$ML_VAR/pg")
    printf '%s\n' "${target%/pg}"
  else
    printf '%s\n' "$ML_VAR"
  fi
}

pg_data() { printf '%s/pg\n' "$(pg_home)"; }
pg_sock() { printf '%s/run\n' "$(pg_home)"; }
pg_log()  { printf '%s/log/postgresql.log\n' "$(pg_home)"; }

# Can PostgreSQL live directly in $ML_VAR? No when the socket path would be too
# long or when, as root, the postgres user cannot enter $ML_VAR.
pg_needs_indirect() {
  local sockpath="$ML_VAR/run/.s.PGSQL.$ML_PG_PORT"
  (( ${#sockpath} > 100 )) && return 0
  if (( EUID == 0 )); then
    id postgres >/dev/null 2>&1 || die "the postgres system user is missing (is postgresql-15 installed?)"
    ! (cd / && runuser -u postgres -- test -x "$ML_VAR" -a -r "$ML_VAR")
  else
    return 1
  fi
}

# The /tmp place for a given $ML_VAR.
pg_alt_home() {
  local h
  h=$(printf '%s' "$ML_VAR" | sha1sum | cut -c1-10)
  printf '/tmp/meterline-%s-%s\n' "$(id -u)" "$h"
}

# ml_prepare_var — create $ML_VAR and decide where PostgreSQL lives. Idempotent.
ml_prepare_var() {
  mkdir -p -- "$ML_VAR"/{log,redis,storage}
  if [[ ! -e $ML_VAR/pg && ! -L $ML_VAR/pg ]] && pg_needs_indirect; then
    local alt
    alt=$(pg_alt_home)
    if [[ -e $alt && ! -O $alt ]]; then
      die "$alt exists and is not ours; remove it or set ML_VAR elsewhere"
    fi
    if [[ -e $alt ]]; then
      # Left by an earlier $ML_VAR at this path that was deleted: a fresh
      # $ML_VAR starts empty, never with that old database.
      warn "removing $alt, left behind by an earlier $ML_VAR"
      if [[ -f $alt/pg/postmaster.pid ]]; then
        pg_as "$PGBIN/pg_ctl" -D "$alt/pg" -m fast -w -s stop >/dev/null 2>&1 || true
      fi
      rm -rf -- "$alt"
    fi
    mkdir -p -- "$alt"/{pg,run,log}
    chmod 755 -- "$alt"
    if [[ -d $ML_VAR/run && ! -L $ML_VAR/run ]]; then
      # pid files written before PostgreSQL was first started
      find "$ML_VAR/run" -mindepth 1 -maxdepth 1 -exec mv -t "$alt/run" -- {} +
      rmdir -- "$ML_VAR/run"
    fi
    ln -sfn -- "$alt/pg" "$ML_VAR/pg"
    ln -sfn -- "$alt/run" "$ML_VAR/run"
    log "note: PostgreSQL data and socket live in $alt (linked from $ML_VAR/pg and $ML_VAR/run)"
    if (( EUID == 0 )); then
      log "      because the postgres user cannot enter $ML_VAR"
    else
      log "      because $ML_VAR is too long a path for a Unix socket"
    fi
  fi
  local home
  home=$(pg_home)
  if [[ $home != "$ML_VAR" && ! -d $home/pg ]]; then
    warn "$home is gone (was /tmp cleared?): PostgreSQL starts with an empty data directory"
  fi
  mkdir -p -- "$home"/{pg,run,log}
  chmod 700 -- "$home/pg"
  touch -- "$home/log/postgresql.log"
  if (( EUID == 0 )); then
    chown postgres: -- "$home/pg" "$home/run" "$home/log/postgresql.log"
  fi
  if [[ $home != "$ML_VAR" ]]; then
    ln -sfn -- "$home/log/postgresql.log" "$ML_VAR/log/postgresql.log"
  fi
}

# ml_wipe_var — delete $ML_VAR (and its /tmp part). Services must be stopped.
ml_wipe_var() {
  local home
  home=$(pg_home)
  case $ML_VAR in
    / | "$HOME" | "$ML_ROOT" | "") die "refusing to wipe ML_VAR=$ML_VAR" ;;
  esac
  rm -rf -- "$ML_VAR"
  if [[ $home != "$ML_VAR" && $home == /tmp/meterline-* ]]; then rm -rf -- "$home"; fi
}

# ---------------------------------------------------------------- PostgreSQL

pg_running() {
  local data
  data=$(pg_data)
  [[ -f $data/PG_VERSION ]] || return 1
  pg_as "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

pg_ready() { "$PGBIN/pg_isready" -q -h "$(pg_sock)" -p "$ML_PG_PORT" -t 2; }

# pg_dsn DB — the libpq URL of database DB on the local server.
pg_dsn() {
  printf 'postgresql:///%s?host=%s&port=%s\n' "$1" "$(urlencode "$(realpath -m -- "$(pg_sock)")")" "$ML_PG_PORT"
}

# psql_admin ARGS... — psql as the bootstrap superuser `postgres`.
psql_admin() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(pg_sock)" -p "$ML_PG_PORT" -U postgres -d postgres "$@"
}

pg_init() {
  local data locale_opt
  data=$(pg_data)
  if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
    locale_opt=--locale=C.UTF-8
  else
    locale_opt=--no-locale
  fi
  log "initialising PostgreSQL data directory $data"
  if ! pg_as "$PGBIN/initdb" -D "$data" -U postgres -E UTF8 "$locale_opt" \
        --auth-local=trust --auth-host=scram-sha-256 >"$ML_VAR/log/initdb.log" 2>&1; then
    log_tail "$ML_VAR/log/initdb.log"
    die "initdb failed"
  fi
  printf "\n# Meterline: settings written by scripts/svc at every start\ninclude_if_exists = 'meterline.conf'\n" \
    >>"$data/postgresql.conf"
}

# Written at every start so that ML_PG_PORT and ML_PG_FAST take effect.
pg_write_conf() {
  local data sock
  data=$(pg_data)
  sock=$(realpath -m -- "$(pg_sock)")
  {
    echo "# generated by scripts/svc (scripts/lib.sh: pg_write_conf) at every start"
    echo "listen_addresses = ''"
    echo "port = $ML_PG_PORT"
    echo "unix_socket_directories = '${sock//\'/\'\'}'"
    echo "max_connections = 200"
    echo "timezone = 'UTC'"
    echo "log_timezone = 'UTC'"
    if [[ ${ML_PG_FAST:-0} == 1 ]]; then
      echo "# ML_PG_FAST=1 (scripts/test): throw-away data, no durability"
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } >"$data/meterline.conf"
  chmod 644 -- "$data/meterline.conf"
}

pg_start() {
  ml_prepare_var
  local data
  data=$(pg_data)
  [[ -x $PGBIN/pg_ctl ]] || die "$PGBIN/pg_ctl not found (install postgresql-15)"
  [[ -f $data/PG_VERSION ]] || pg_init
  if pg_running; then
    if wait_pg_ready 10; then
      log "PostgreSQL already running (socket $(pg_sock), port $ML_PG_PORT)"
      return 0
    fi
    die "PostgreSQL runs from $data but does not answer on port $ML_PG_PORT (started with another ML_PG_PORT?); try: scripts/svc pg stop"
  fi
  pg_write_conf
  log "starting PostgreSQL (socket $(pg_sock), port $ML_PG_PORT, log $(pg_log))"
  if ! pg_as "$PGBIN/pg_ctl" -D "$data" -l "$(pg_log)" -w -t "$ML_START_TIMEOUT" -s start; then
    log_tail "$(pg_log)"
    die "PostgreSQL did not start"
  fi
  wait_pg_ready "$ML_START_TIMEOUT" || { log_tail "$(pg_log)"; die "PostgreSQL does not answer"; }
}

wait_pg_ready() {
  local deadline=$((SECONDS + $1))
  until pg_ready; do
    (( SECONDS >= deadline )) && return 1
    sleep 0.2
  done
}

pg_stop() {
  local data
  data=$(pg_data)
  if ! pg_running; then
    log "PostgreSQL is not running"
    return 0
  fi
  log "stopping PostgreSQL"
  if ! pg_as "$PGBIN/pg_ctl" -D "$data" -m fast -w -t "$ML_START_TIMEOUT" -s stop; then
    warn "fast shutdown did not finish; using immediate shutdown"
    pg_as "$PGBIN/pg_ctl" -D "$data" -m immediate -w -s stop || die "could not stop PostgreSQL"
  fi
}

pg_status() {
  local pid
  if pg_running; then
    pid=$(head -n1 "$(pg_data)/postmaster.pid" 2>/dev/null || true)
    if pg_ready; then
      echo "PostgreSQL: running (pid $pid), socket dir $(realpath -m -- "$(pg_sock)"), port $ML_PG_PORT"
    else
      echo "PostgreSQL: running (pid $pid) but not answering on port $ML_PG_PORT"
    fi
    return 0
  fi
  echo "PostgreSQL: stopped (data $(pg_data))"
  return 3
}

# pg_ensure_db NAME — a superuser role for the invoking OS user and database
# NAME owned by it. Idempotent.
pg_ensure_db() {
  local db=$1 me
  me=$(id -un)
  psql_admin -v role="$me" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I SUPERUSER LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
}

# ---------------------------------------------------------------- Redis

redis_pidfile() { printf '%s/run/redis.pid\n' "$ML_VAR"; }
redis_log()     { printf '%s/log/redis.log\n' "$ML_VAR"; }

# Our Redis pid, or nothing. A pid file whose process is gone or is not a
# redis-server any more is stale and removed.
redis_pid() {
  local f pid
  f=$(redis_pidfile)
  pid=$(read_pid "$f")
  [[ -n $pid ]] || return 0
  if pid_is "$pid" redis-server; then
    printf '%s\n' "$pid"
  else
    rm -f -- "$f"
  fi
}

redis_cli() { timeout 5 redis-cli -h 127.0.0.1 -p "$ML_REDIS_PORT" "$@"; }

# redis_quote S — a Redis config string.
redis_quote() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }

redis_write_conf() {
  cat >"$ML_VAR/redis.conf" <<EOF
# generated by scripts/svc (scripts/lib.sh: redis_write_conf) at every start
port $ML_REDIS_PORT
bind 127.0.0.1
protected-mode yes
daemonize no
pidfile $(redis_quote "$(redis_pidfile)")
logfile $(redis_quote "$(redis_log)")
dir $(redis_quote "$ML_VAR/redis")
appendonly yes
# always, not everysec: a 202 for usage promises the events survive kill -9 of
# Redis, and Redis 7.0 has no WAITAOF; writes that arrive together share one
# fsync (billing-api batches usage), so the cost is one fsync per batch
appendfsync always
maxmemory-policy noeviction
EOF
}

redis_start() {
  ml_prepare_var
  mkdir -p -- "$ML_VAR/run"
  local pid deadline answer
  pid=$(redis_pid)
  if [[ -n $pid ]]; then
    if [[ $(redis_cli ping 2>/dev/null) == PONG ]]; then
      log "Redis already running (pid $pid, port $ML_REDIS_PORT)"
      return 0
    fi
    die "Redis (pid $pid) runs from $ML_VAR but does not answer on port $ML_REDIS_PORT; try: scripts/svc redis stop"
  fi
  command -v redis-server >/dev/null || die "redis-server not found (install redis-server)"
  if port_in_use "$ML_REDIS_PORT"; then
    die "port $ML_REDIS_PORT is taken by another program; set ML_REDIS_PORT (and BILLING_REDIS_URL) to another port"
  fi
  redis_write_conf
  log "starting Redis (port $ML_REDIS_PORT, data $ML_VAR/redis, log $(redis_log))"
  setsid redis-server "$ML_VAR/redis.conf" </dev/null >>"$(redis_log)" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$(redis_pidfile)"
  deadline=$((SECONDS + ML_START_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      rm -f -- "$(redis_pidfile)"
      log_tail "$(redis_log)" 20
      die "Redis exited during start"
    fi
    answer=$(redis_cli ping 2>/dev/null || true)
    [[ $answer == PONG ]] && break
    if (( SECONDS >= deadline )); then
      log_tail "$(redis_log)" 20
      die "Redis did not answer within ${ML_START_TIMEOUT}s (last answer: ${answer:-none})"
    fi
    sleep 0.1
  done
  answer=$(redis_cli info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
  [[ $answer == "$pid" ]] || die "another Redis (pid $answer) answers on port $ML_REDIS_PORT"
}

# redis_stop [--kill] — SHUTDOWN semantics via SIGTERM (the AOF is fsynced);
# --kill is kill -9, for crash tests.
redis_stop() {
  local mode=${1:-} pid
  pid=$(redis_pid)
  if [[ -z $pid ]]; then
    log "Redis is not running"
    return 0
  fi
  if [[ $mode == --kill ]]; then
    log "killing Redis (kill -9, pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "Redis (pid $pid) survived kill -9"
  else
    log "stopping Redis (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$ML_START_TIMEOUT"; then
      warn "Redis did not stop within ${ML_START_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || true
    fi
  fi
  rm -f -- "$(redis_pidfile)"
}

redis_status() {
  local pid
  pid=$(redis_pid)
  if [[ -n $pid ]]; then
    if [[ $(redis_cli ping 2>/dev/null) == PONG ]]; then
      echo "Redis: running (pid $pid), port $ML_REDIS_PORT, data $ML_VAR/redis"
    else
      echo "Redis: running (pid $pid) but not answering on port $ML_REDIS_PORT"
    fi
    return 0
  fi
  echo "Redis: stopped (data $ML_VAR/redis)"
  return 3
}

# ---------------------------------------------------------------- build

# ml_build DIR BUILD_TYPE [CMAKE_ARGS...] — configure (quietly) and build.
ml_build() {
  local dir=$1 type=$2
  shift 2
  log "building $dir ($type)"
  cmake -S "$ML_ROOT" -B "$ML_ROOT/$dir" -DCMAKE_BUILD_TYPE="$type" --log-level=WARNING "$@" \
    || die "cmake configure of $dir failed"
  cmake --build "$ML_ROOT/$dir" -j "${ML_JOBS:-$(nproc)}" || die "build of $dir failed"
}
