#!/usr/bin/env bash
# The project's single test command (developers and CI alike).
#
#   scripts/test.sh [go test args...]      e.g. scripts/test.sh -run TestFoo -v
#
# It installs what is missing from Debian's packages (PostgreSQL, Mosquitto,
# Chromium, CJK fonts), starts a throwaway PostgreSQL and a throwaway Mosquitto
# bound to 127.0.0.1 on free ports, exports
#
#   ONECARD_TEST_POSTGRES  postgres://postgres@127.0.0.1:PORT/onecard_test?sslmode=disable
#   ONECARD_TEST_MQTT      tcp://127.0.0.1:PORT
#   ONECARD_TEST_CHROMIUM  /usr/bin/chromium
#
# then runs, stopping at the first failure: the gofmt check, go vet ./...,
# go test -race -count=1 -timeout 30m [args] ./...   (ONECARD_TEST_PKGS overrides ./...)
# and, without args, every benchmark once at its reduced size (-benchtime 1x)
# Everything it started is stopped and removed on exit; the exit code is that
# of the failing step (go test's when it gets that far).
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }
header() { printf '\n==> %s\n' "$*"; }
die() { log "test.sh: ERROR: $*"; exit 1; }

SCRIPT_START=$(date +%s)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)

# Environment hygiene: CI may run with a minimal environment.
if [[ -z "${HOME:-}" ]]; then
  HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
  export HOME
fi
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found in PATH (expected /usr/local/go/bin/go)"

IS_ROOT=0
[[ "$(id -u)" -eq 0 ]] && IS_ROOT=1

# ---------------------------------------------------------------------------
# State for cleanup; the EXIT trap stops whatever was started.
PG_TMP=""
PG_BIN=""
PG_STARTED=0
MQ_TMP=""
MQ_PID=""

as_pg() {
  # Run a PostgreSQL command as the postgres OS user when we are root
  # (PostgreSQL refuses to run as root); from the temp dir so that the
  # postgres user can always access its current directory.
  if [[ "$IS_ROOT" -eq 1 ]]; then
    if command -v runuser >/dev/null 2>&1; then
      (cd "$PG_TMP" && runuser -u postgres -- "$@")
    else
      (cd "$PG_TMP" && su -s /bin/bash postgres -c "$(printf '%q ' "$@")")
    fi
  else
    (cd "$PG_TMP" && "$@")
  fi
}

dump_logs() {
  if [[ -n "$PG_TMP" && -f "$PG_TMP/postgres.log" ]]; then
    log "---- postgres log (tail) ----"
    tail -n 40 "$PG_TMP/postgres.log" >&2 || true
  fi
  if [[ -n "$MQ_TMP" && -f "$MQ_TMP/mosquitto.log" ]]; then
    log "---- mosquitto log (tail) ----"
    tail -n 40 "$MQ_TMP/mosquitto.log" >&2 || true
  fi
}

# True while a process exists and is not a zombie (stopped postgres is
# reparented to PID 1, which may reap it late).
pid_alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 0
  [[ "$st" != "Z" && "$st" != "X" ]]
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n "$MQ_PID" || "$PG_STARTED" -eq 1 ]]; then
    printf '\n==> stopping services\n'
  fi
  if [[ -n "$MQ_PID" ]]; then
    kill -TERM "$MQ_PID" 2>/dev/null
    for _ in $(seq 1 50); do
      pid_alive "$MQ_PID" || break
      sleep 0.1
    done
    kill -KILL "$MQ_PID" 2>/dev/null
    wait "$MQ_PID" 2>/dev/null
  fi
  if [[ "$PG_STARTED" -eq 1 && -d "$PG_TMP/data" ]]; then
    local pm_pid=""
    [[ -f "$PG_TMP/data/postmaster.pid" ]] && pm_pid=$(head -n 1 "$PG_TMP/data/postmaster.pid" 2>/dev/null)
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" stop -m fast -w -t 30 >/dev/null 2>&1
    if [[ -n "$pm_pid" ]] && pid_alive "$pm_pid"; then
      log "test.sh: postgres did not stop in time; killing it"
      kill -KILL "$pm_pid" 2>/dev/null
      sleep 0.5
    fi
  fi
  [[ -n "$PG_TMP" ]] && rm -rf "$PG_TMP"
  [[ -n "$MQ_TMP" ]] && rm -rf "$MQ_TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# 1. Packages.
find_pg_bin() { # newest /usr/lib/postgresql/VERSION/bin with the server binaries
  local d dirs=()
  for d in /usr/lib/postgresql/*/bin; do
    if [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]]; then dirs+=("$d"); fi
  done
  [[ ${#dirs[@]} -gt 0 ]] || return 1
  printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Is a file held by a (POSIX/OFD/flock) lock?  Reads /proc/locks, so it needs
# neither fuser nor lsof.
file_locked() {
  local f=$1 id dev ino
  [[ -e "$f" && -r /proc/locks ]] || return 1
  id=$(stat -L -c '%d %i' "$f" 2>/dev/null) || return 1
  read -r dev ino <<<"$id"
  # /proc/locks names a file as MAJOR:MINOR:INODE (major and minor in hex).
  id=$(printf '%02x:%02x:%s' \
    $(((dev >> 8 & 0xfff) | (dev >> 32 & ~0xfff))) \
    $(((dev & 0xff) | (dev >> 12 & ~0xff))) "$ino")
  awk -v id="$id" '{ for (i = 1; i <= NF; i++) if ($i == id) { found = 1 } } END { exit !found }' /proc/locks
}

wait_for_apt() {
  local limit=600 waited=0 f busy
  while :; do
    busy=""
    for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
      if file_locked "$f"; then busy=$f; break; fi
    done
    [[ -z "$busy" ]] && return 0
    if (( waited >= limit )); then
      die "package manager still busy ($busy locked) after ${limit}s"
    fi
    (( waited % 30 == 0 )) && log "test.sh: waiting for another package install to finish ($busy is locked)..."
    sleep 5
    waited=$((waited + 5))
  done
}

install_packages() {
  local missing=()
  PG_BIN=$(find_pg_bin || true)
  [[ -n "$PG_BIN" ]] || missing+=("pg_ctl")
  [[ -x /usr/sbin/mosquitto ]] || missing+=("mosquitto")
  [[ -x /usr/bin/chromium ]] || missing+=("chromium")
  pkg_installed fonts-noto-cjk || missing+=("fonts-noto-cjk")
  local extra=()
  command -v gcc >/dev/null 2>&1 || extra+=(gcc libc6-dev) # go test -race needs cgo
  if [[ ${#missing[@]} -eq 0 && ${#extra[@]} -eq 0 ]]; then
    echo "all packages present"
    return 0
  fi
  echo "missing: ${missing[*]} ${extra[*]}"
  local sudo=()
  if [[ "$IS_ROOT" -ne 1 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install postgresql mosquitto chromium fonts-noto-cjk yourself"
    sudo=(sudo)
  fi
  wait_for_apt
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update || log "test.sh: warning: apt-get update failed; trying the install anyway"
  wait_for_apt
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
    postgresql mosquitto chromium fonts-noto-cjk "${extra[@]}" \
    || log "test.sh: warning: apt-get install failed"
  PG_BIN=$(find_pg_bin || true)
  [[ -n "$PG_BIN" ]] || die "PostgreSQL server binaries (pg_ctl) not found under /usr/lib/postgresql/*/bin"
  [[ -x /usr/sbin/mosquitto ]] || die "/usr/sbin/mosquitto not found"
  [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium not found"
  pkg_installed fonts-noto-cjk || log "test.sh: warning: fonts-noto-cjk not installed; screenshots may lack CJK glyphs"
}

header "packages"
install_packages

# ---------------------------------------------------------------------------
# Free ports: outside the ephemeral range, not used by any TCP socket.
PICKED_PORTS=" "
port_busy() {
  local p=$1
  [[ "$PICKED_PORTS" == *" $p "* ]] && return 0
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
  fi
}
pick_port() {
  local p=$((10000 + RANDOM % 22000)) i
  for ((i = 0; i < 500; i++)); do
    if ! port_busy "$p"; then
      PICKED_PORTS+="$p "
      printf '%s\n' "$p"
      return 0
    fi
    p=$((p + 1))
    ((p > 32000)) && p=10000
  done
  die "no free TCP port found"
}
port_accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

SERVICES_START=$(date +%s.%N)

# ---------------------------------------------------------------------------
# 2. PostgreSQL (started without waiting; readiness is checked below).
header "starting PostgreSQL ($PG_BIN)"
PG_TMP=$(mktemp -d /tmp/onecard-pg.XXXXXX)
if [[ "$IS_ROOT" -eq 1 ]]; then
  id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (is the postgresql package installed?)"
  chown postgres: "$PG_TMP"
fi
PG_PORT=$(pick_port)
as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$PG_TMP/initdb.log" 2>&1 \
  || { cat "$PG_TMP/initdb.log" >&2; die "initdb failed"; }
cat >>"$PG_TMP/data/postgresql.conf" <<EOF

# onecard scripts/test.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_TMP'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/postgres.log" -W start >/dev/null \
  || { dump_logs; die "pg_ctl start failed"; }
PG_STARTED=1

# ---------------------------------------------------------------------------
# 3. Mosquitto.
header "starting Mosquitto"
MQ_TMP=$(mktemp -d /tmp/onecard-mqtt.XXXXXX)
MQ_PORT=$(pick_port)
{
  echo "listener $MQ_PORT 127.0.0.1"
  echo "allow_anonymous true"
  echo "persistence false"
  echo "log_dest stderr"
  echo "log_type error"
  echo "log_type warning"
  echo "log_type notice"
  # As root, stay root rather than dropping to an OS user that may not exist;
  # the broker only listens on loopback and lives for this run.
  if [[ "$IS_ROOT" -eq 1 ]]; then echo "user root"; fi
} >"$MQ_TMP/mosquitto.conf"
/usr/sbin/mosquitto -c "$MQ_TMP/mosquitto.conf" </dev/null >"$MQ_TMP/mosquitto.log" 2>&1 &
MQ_PID=$!
for ((i = 0; i < 100; i++)); do
  port_accepts "$MQ_PORT" && break
  pid_alive "$MQ_PID" || { MQ_PID=""; dump_logs; die "mosquitto exited during startup"; }
  sleep 0.1
done
port_accepts "$MQ_PORT" || { dump_logs; die "mosquitto not accepting connections on 127.0.0.1:$MQ_PORT after 10s"; }
echo "mosquitto listening on 127.0.0.1:$MQ_PORT (pid $MQ_PID)"

# ---------------------------------------------------------------------------
# 5. Wait for PostgreSQL, create the database.
header "waiting for PostgreSQL on 127.0.0.1:$PG_PORT"
for ((i = 0; i < 300; i++)); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 && break
  sleep 0.1
done
"$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -t 1 >/dev/null \
  || { dump_logs; die "PostgreSQL not accepting connections on 127.0.0.1:$PG_PORT after 30s"; }
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres onecard_test \
  || { dump_logs; die "createdb onecard_test failed"; }
echo "postgres listening on 127.0.0.1:$PG_PORT, database onecard_test created"

export ONECARD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PG_PORT/onecard_test?sslmode=disable"
export ONECARD_TEST_MQTT="tcp://127.0.0.1:$MQ_PORT"
export ONECARD_TEST_CHROMIUM=/usr/bin/chromium # 4.

SERVICES_END=$(date +%s.%N)
awk -v a="$SERVICES_START" -v b="$SERVICES_END" 'BEGIN { printf "services ready in %.1fs\n", b - a }'
echo "ONECARD_TEST_POSTGRES=$ONECARD_TEST_POSTGRES"
echo "ONECARD_TEST_MQTT=$ONECARD_TEST_MQTT"
echo "ONECARD_TEST_CHROMIUM=$ONECARD_TEST_CHROMIUM"

# ---------------------------------------------------------------------------
# 6. gofmt, go vet, go test.
header "gofmt -l"
go_files=()
if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files plus new, not-ignored ones (the same set in a clean clone).
  while IFS= read -r -d '' f; do
    [[ -f "$f" ]] && go_files+=("$f")
  done < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
else
  while IFS= read -r -d '' f; do
    go_files+=("$f")
  done < <(find . -name '*.go' -not -path './.git/*' -print0)
fi
if [[ ${#go_files[@]} -gt 0 ]]; then
  unformatted=$(gofmt -l "${go_files[@]}") || die "gofmt failed"
  if [[ -n "$unformatted" ]]; then
    log "these files are not gofmt-formatted (run: gofmt -w FILE):"
    log "$unformatted"
    exit 1
  fi
fi
echo "gofmt: ${#go_files[@]} files OK"

header "go vet ./..."
rc=0
go vet ./... || rc=$?
if [[ "$rc" -ne 0 ]]; then
  log "test.sh: go vet failed (exit $rc)"
  exit "$rc"
fi

# shellcheck disable=SC2206
pkgs=(${ONECARD_TEST_PKGS:-./...})
test_cmd=(go test -race -count=1 -timeout 30m "$@" "${pkgs[@]}")
header "${test_cmd[*]}"
rc=0
"${test_cmd[@]}" || rc=$?
log "test.sh: go test exit code $rc; total $(($(date +%s) - SCRIPT_START))s"
[[ "$rc" -eq 0 ]] || exit "$rc"

# 7. Every benchmark once, at its reduced default size (about a minute): they
# count what they measure (events lost or stored twice, payments, cards at
# every reader…) and fail on a wrong count, so they are tests too. Skipped
# when the run was narrowed (arguments given, or ONECARD_TEST_BENCH=0).
if [[ $# -eq 0 && "${ONECARD_TEST_BENCH:-1}" != "0" ]]; then
  bench_cmd=(go test -count=1 -run '^$' -bench . -benchtime 1x -timeout 20m "${pkgs[@]}")
  header "${bench_cmd[*]}"
  "${bench_cmd[@]}" || rc=$?
  log "test.sh: benchmarks exit code $rc; total $(($(date +%s) - SCRIPT_START))s"
fi
exit "$rc"
