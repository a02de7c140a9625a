# The Nextcloud TEST DOUBLE (tests/servers/nextcloud.py, aiohttp from the venv): not Nextcloud,
# a server reproducing the Nextcloud behaviours listed in the reference (folder ETag propagation,
# quota 507, chunking v2, bulk upload, Login Flow v2, trash, versions). Bearer tokens are checked
# against the real Keycloak's userinfo endpoint. Its data lives under $STATE, wiped at each start.
# Tests that change its switches (bearer off, capabilities) start their own copy on port 0.
# It serves the quota properties stale for 300 s, as observed on Nextcloud 34.0.1 with APCu.
# After an update of tests/servers/nextcloud.py, restart it: scripts/stack.d/60-nextcloud.sh down
# then up (from the clone whose copy should run).
NC_PORT=${PASSERELLE_NEXTCLOUD_PORT:-18085}
NC_USERS="alice:alice-nc-app-1,bob:bob-nc-app-1"

case $1 in
up)
  if ! running nextcloud; then
    [[ -x $VENV/bin/python ]] || { say "the Python venv is missing: run scripts/setup"; exit 1; }
    args=()
    IFS=, read -ra pairs <<<"$NC_USERS"
    for p in "${pairs[@]}"; do args+=(--user "$p"); done
    say "starting the Nextcloud test double on port $NC_PORT"
    start nextcloud "$VENV/bin/python" "$ROOT/tests/servers/nextcloud.py" --port "$NC_PORT" \
      --data "$STATE/nextcloud" --quota-cache "${PASSERELLE_NEXTCLOUD_QUOTA_CACHE:-300}" --issuer "${PASSERELLE_TEST_ISSUER:-http://127.0.0.1:18080/realms/passerelle}" "${args[@]}"
    wait_http "http://127.0.0.1:$NC_PORT/status.php" 30 || { tail -20 "$STATE/nextcloud.log" >&2; exit 1; }
  fi
  echo "export PASSERELLE_TEST_NEXTCLOUD=http://127.0.0.1:$NC_PORT/"
  echo "export PASSERELLE_TEST_NEXTCLOUD_USERS=$NC_USERS"
  echo "export PASSERELLE_TEST_NEXTCLOUD_SERVER=$ROOT/tests/servers/nextcloud.py"
  echo "export PASSERELLE_TEST_PYTHON=$VENV/bin/python"
  ;;
down) stop nextcloud ;;
esac
