# A real Bluesky PDS for the Bluesky plugin's tests (sourced by scripts/test, after
# scripts/lib/services.sh and ensure_node). The npm packages pinned in server/tests/pds
# (@atproto/pds, @did-plc/server) are installed with `npm ci` into the build directory,
# ${CARGO_TARGET_DIR:-target}/pds, once per change of the lock file; start_pds runs
# server/tests/pds/start.js (in-memory PLC directory, PDS on 127.0.0.1, SQLite and blobs in
# the given directory) and exports HERALD_TEST_PDS_URL; stop_pds stops it.
#
# Functions set these variables: PDS_HOME, PDS_PID, HERALD_TEST_PDS_URL.

# ensure_pds: installs the pinned packages when the cache is missing or stale.
ensure_pds() {
  local src=server/tests/pds stamp
  PDS_HOME=${CARGO_TARGET_DIR:-$(pwd)/target}/pds
  mkdir -p "$PDS_HOME"
  stamp=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
  (
    # Several checkouts may share the build directory: one installs, the others wait.
    flock 9
    if [ "$(cat "$PDS_HOME/.installed" 2>/dev/null)" != "$stamp" ] || [ ! -d "$PDS_HOME/node_modules" ]; then
      log "installing the test PDS (npm ci into $PDS_HOME)"
      cp "$src/package.json" "$src/package-lock.json" "$PDS_HOME/"
      (cd "$PDS_HOME" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
      echo "$stamp" >"$PDS_HOME/.installed"
    fi
  ) 9>"$PDS_HOME/.lock"
  cp "$src/start.js" "$PDS_HOME/start.js"
}

# start_pds DIR: starts the PDS with its data in DIR; exports HERALD_TEST_PDS_URL.
start_pds() {
  local dir=$1 i
  mkdir -p "$dir"
  : >"$dir/url"
  node "$PDS_HOME/start.js" "$dir" >"$dir/url" 2>"$dir/pds.log" &
  PDS_PID=$!
  for i in $(seq 1 120); do
    HERALD_TEST_PDS_URL=$(sed -n 's/^HERALD_TEST_PDS_URL=//p' "$dir/url" || true)
    [ -n "$HERALD_TEST_PDS_URL" ] && break
    kill -0 "$PDS_PID" 2>/dev/null || { cat "$dir/pds.log" >&2; die "the test PDS exited"; }
    sleep 0.5
  done
  [ -n "$HERALD_TEST_PDS_URL" ] || { cat "$dir/pds.log" >&2; die "the test PDS did not start in 60 s"; }
  export HERALD_TEST_PDS_URL
  log "test PDS at $HERALD_TEST_PDS_URL"
}

stop_pds() {
  if [ -n "${PDS_PID:-}" ]; then
    kill "$PDS_PID" 2>/dev/null || true
    wait "$PDS_PID" 2>/dev/null || true
    PDS_PID=
  fi
}
