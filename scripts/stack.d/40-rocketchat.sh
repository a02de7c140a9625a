# The Rocket.Chat TEST DOUBLE (tests/servers/rocketchat.py, aiohttp from the venv): not
# Rocket.Chat, a server rebuilt on Rocket.Chat's source (each behaviour names its source file):
# access-token login checked against the real Keycloak's userinfo, subscriptions.get with
# updatedSince, the REST rate limiter (10 calls a minute per IP and route), the websocket with
# resume login, presence per connection, stream-notify-user events and pings, a default
# server's unread and notification rules. It answers as a default Rocket.Chat 7.x (Express API);
# PASSERELLE_ROCKETCHAT_VERSION=6.x gives the 6.x Restivus answers. Tests post messages and
# inject faults through its /_control/ API; tests that change global switches (or want 6.x)
# start their own copy on port 0 with --rocketchat-version.
RC_PORT=${PASSERELLE_ROCKETCHAT_PORT:-18083}
RC_VERSION=${PASSERELLE_ROCKETCHAT_VERSION:-7.x}

case $1 in
up)
  if ! running rocketchat; then
    [[ -x $VENV/bin/python ]] || { say "the Python venv is missing: run scripts/setup"; exit 1; }
    say "starting the Rocket.Chat test double ($RC_VERSION) on port $RC_PORT"
    start rocketchat "$VENV/bin/python" "$ROOT/tests/servers/rocketchat.py" --port "$RC_PORT" \
      --rocketchat-version "$RC_VERSION" \
      --issuer "${PASSERELLE_TEST_ISSUER:-http://127.0.0.1:18080/realms/passerelle}"
    wait_http "http://127.0.0.1:$RC_PORT/api/info" 30 || { tail -20 "$STATE/rocketchat.log" >&2; exit 1; }
  fi
  echo "export PASSERELLE_TEST_ROCKETCHAT=http://127.0.0.1:$RC_PORT"
  echo "export PASSERELLE_TEST_ROCKETCHAT_CONTROL=http://127.0.0.1:$RC_PORT/_control"
  echo "export PASSERELLE_TEST_ROCKETCHAT_SERVER=$ROOT/tests/servers/rocketchat.py"
  echo "export PASSERELLE_TEST_PYTHON=$VENV/bin/python"
  ;;
down) stop rocketchat ;;
esac
