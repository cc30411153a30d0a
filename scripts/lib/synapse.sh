# A throwaway Synapse (Matrix homeserver) for the Matrix plugin's tests. Sourced by
# scripts/test after services.sh (uses log, die, free_port); do not run it.
#
# ensure_synapse installs the pinned packages of server/tests/synapse/requirements.txt into
# a venv cached under the build dir (${CARGO_TARGET_DIR:-target}/synapse-venv), reinstalled
# only when the requirements change. start_synapse DIR writes a config (server_name
# localhost, SQLite, 127.0.0.1 on a free port, open registration, a low message rate limit
# that tests lift per user with the admin API), starts it, registers an admin and exports
# HERALD_TEST_SYNAPSE_URL and HERALD_TEST_SYNAPSE_ADMIN_TOKEN. stop_synapse stops it.

synapse_requirements=server/tests/synapse/requirements.txt

# Synapse 1.163 needs Python 3.10 or newer.
synapse_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  die "Synapse needs Python 3.10+ with the venv module (apt-get install python3-venv)"
}

ensure_synapse() {
  local target=${CARGO_TARGET_DIR:-$(pwd)/target}
  SYNAPSE_VENV=$target/synapse-venv
  local stamp=$SYNAPSE_VENV/.herald-requirements
  if [ -x "$SYNAPSE_VENV/bin/synapse_homeserver" ] && cmp -s "$synapse_requirements" "$stamp"; then
    return
  fi
  mkdir -p "$target"
  (
    # Several checkouts may share the build directory: one installs, the others wait.
    flock 9
    if [ -x "$SYNAPSE_VENV/bin/synapse_homeserver" ] && cmp -s "$synapse_requirements" "$stamp"; then
      exit 0
    fi
    log "installing Synapse into $SYNAPSE_VENV (pip)"
    rm -rf "$SYNAPSE_VENV"
    "$(synapse_python)" -m venv "$SYNAPSE_VENV" || die "could not create $SYNAPSE_VENV"
    "$SYNAPSE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$synapse_requirements" \
      || die "pip could not install $synapse_requirements"
    cp "$synapse_requirements" "$stamp"
  ) 9>"$target/synapse-venv.lock"
}

start_synapse() {
  SYNAPSE_DIR=$1
  SYNAPSE_PORT=$(free_port)
  mkdir -p "$SYNAPSE_DIR"
  local secret
  secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  cat >"$SYNAPSE_DIR/homeserver.yaml" <<YAML
server_name: localhost
public_baseurl: http://127.0.0.1:$SYNAPSE_PORT/
pid_file: $SYNAPSE_DIR/homeserver.pid
signing_key_path: $SYNAPSE_DIR/signing.key
media_store_path: $SYNAPSE_DIR/media
log_config: $SYNAPSE_DIR/log.yaml
report_stats: false
suppress_key_server_warning: true
trusted_key_servers: []
federation_domain_whitelist: []
listeners:
  - port: $SYNAPSE_PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $SYNAPSE_DIR/homeserver.db
enable_registration: true
enable_registration_without_verification: true
registration_shared_secret: "$secret"
max_upload_size: 50M
url_preview_enabled: false
# One message per 5 s, so a test meets a real M_LIMIT_EXCEEDED with its second message;
# the other tests lift their users' limit with the admin API override_ratelimit (0 = none).
rc_message: {per_second: 0.2, burst_count: 1}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
rc_media_create: {per_second: 1000, burst_count: 1000}
YAML
  cat >"$SYNAPSE_DIR/log.yaml" <<YAML
version: 1
formatters:
  precise: {format: '%(asctime)s %(levelname)s %(name)s %(request)s %(message)s'}
filters:
  context: {(): synapse.logging.context.LoggingContextFilter, request: ""}
handlers:
  file:
    class: logging.FileHandler
    filename: $SYNAPSE_DIR/homeserver.log
    formatter: precise
    filters: [context]
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
YAML
  "$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver -c "$SYNAPSE_DIR/homeserver.yaml" \
    --generate-keys >"$SYNAPSE_DIR/generate.log" 2>&1 \
    || { cat "$SYNAPSE_DIR/generate.log" >&2; die "Synapse could not generate its signing key"; }
  "$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver -c "$SYNAPSE_DIR/homeserver.yaml" \
    >"$SYNAPSE_DIR/stdout.log" 2>&1 &
  SYNAPSE_PID=$!
  HERALD_TEST_SYNAPSE_URL="http://127.0.0.1:$SYNAPSE_PORT"
  for _ in $(seq 1 300); do
    curl -fsS "$HERALD_TEST_SYNAPSE_URL/_matrix/client/versions" >/dev/null 2>&1 && break
    kill -0 "$SYNAPSE_PID" 2>/dev/null || { cat "$SYNAPSE_DIR/stdout.log" >&2; die "Synapse exited"; }
    sleep 0.2
  done
  curl -fsS "$HERALD_TEST_SYNAPSE_URL/_matrix/client/versions" >/dev/null 2>&1 \
    || die "Synapse did not answer on $HERALD_TEST_SYNAPSE_URL (see $SYNAPSE_DIR)"
  "$SYNAPSE_VENV/bin/register_new_matrix_user" -c "$SYNAPSE_DIR/homeserver.yaml" \
    -u herald-admin -p herald-admin-password --admin "$HERALD_TEST_SYNAPSE_URL" >/dev/null \
    || die "could not register the Synapse admin"
  HERALD_TEST_SYNAPSE_ADMIN_TOKEN=$(curl -fsS -X POST "$HERALD_TEST_SYNAPSE_URL/_matrix/client/v3/login" \
    -H 'content-type: application/json' \
    -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"herald-admin"},"password":"herald-admin-password"}' |
    "$SYNAPSE_VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') \
    || die "could not log the Synapse admin in"
  export HERALD_TEST_SYNAPSE_URL HERALD_TEST_SYNAPSE_ADMIN_TOKEN
  log "Synapse on $HERALD_TEST_SYNAPSE_URL (data in $SYNAPSE_DIR)"
}

stop_synapse() {
  if [ -n "${SYNAPSE_PID:-}" ] && kill -0 "$SYNAPSE_PID" 2>/dev/null; then
    kill "$SYNAPSE_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SYNAPSE_PID" 2>/dev/null || break; sleep 0.1; done
  fi
}
