# Shared by scripts/dev and scripts/test: installs what is missing and starts private
# Postgres and Redis servers on loopback. Source it; do not run it.
#
# Functions set these variables: PG_BIN, PG_DATA, PG_PORT, DATABASE_URL, REDIS_DIR,
# REDIS_PORT, REDIS_URL.

log() { printf '\033[1m[herald]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root when we are root, otherwise with sudo when available.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $*"
  fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* yourself"
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "installing $* (apt)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Postgres refuses to run as root: as root we run its tools as the `postgres` user.
pg_run() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
  fi
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after install"
}

# ensure_wrk: the HTTP load generator of `scripts/bench graphql`.
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 || apt_install wrk
  command -v wrk >/dev/null 2>&1 || die "wrk still missing after install"
}

# ensure_moto: moto's S3 server (PyPI `moto[server]`, pinned) in a virtualenv in the
# build directory, for the media library's S3 test; exports HERALD_MOTO_SERVER.
MOTO_VERSION=5.2.1
ensure_moto() {
  local home=${CARGO_TARGET_DIR:-$(pwd)/target}/moto
  mkdir -p "$home"
  (
    # Several checkouts may share the build directory: one installs, the others wait.
    flock 9
    if [ "$(cat "$home/.installed" 2>/dev/null)" != "$MOTO_VERSION" ] || [ ! -x "$home/venv/bin/moto_server" ]; then
      python3 -m venv "$home/venv" >/dev/null 2>&1 || { apt_install python3-venv; python3 -m venv "$home/venv"; }
      log "installing moto[server] $MOTO_VERSION (pip, into $home)"
      "$home/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
      echo "$MOTO_VERSION" >"$home/.installed"
    fi
  ) 9>"$home/.lock"
  HERALD_MOTO_SERVER=$home/venv/bin/moto_server
  export HERALD_MOTO_SERVER
}

# ensure_node: Node 20+ and npm, for the conformance tests in server/tests/conformance.
ensure_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 20 ] || die "Node $major found; the conformance tests need Node 20 or newer"
}

# ensure_chromium: headless Chromium for the GraphiQL check; exports HERALD_CHROMIUM.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || apt_install chromium
  HERALD_CHROMIUM=$(command -v chromium) || die "chromium still missing after install"
  export HERALD_CHROMIUM
}

ensure_wasm_target() {
  if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
  fi
}

# start_postgres DIR [PORT]: initialises DIR once, starts Postgres on 127.0.0.1:PORT
# (a free port when omitted) with trust auth, and sets DATABASE_URL to its `postgres` db.
start_postgres() {
  PG_DATA=$1
  PG_PORT=${2:-$(free_port)}
  mkdir -p "$PG_DATA"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_DATA"; fi
  chmod 700 "$PG_DATA"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null \
      || die "initdb failed in $PG_DATA"
  fi
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=400 ${PG_EXTRA_OPTS:-}" \
    start >/dev/null || { cat "$PG_DATA/server.log" >&2; die "Postgres did not start"; }
  DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  log "Postgres on 127.0.0.1:$PG_PORT (data in $PG_DATA)"
}

stop_postgres() {
  if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# start_redis DIR [PORT]: starts a private Redis on 127.0.0.1:PORT with `noeviction`,
# sets REDIS_URL.
start_redis() {
  REDIS_DIR=$1
  REDIS_PORT=${2:-$(free_port)}
  mkdir -p "$REDIS_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
    --save '' --appendonly no --maxmemory-policy noeviction >/dev/null \
    || die "Redis did not start"
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "Redis did not answer on $REDIS_PORT"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  if [ -n "${REDIS_PORT:-}" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}
