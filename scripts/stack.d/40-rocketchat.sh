# The Rocket.Chat TEST DOUBLE (tests/servers/rocketchat.py, aiohttp from the venv): not
# Rocket.Chat, a server speaking its documented REST and DDP API (access-token login checked
# against the real Keycloak's userinfo, subscriptions.get with updatedSince, the websocket with
# resume login, stream-notify-user events and pings). Tests post messages and inject faults
# through its /_control/ API; tests that change global switches start their own copy on port 0.
RC_PORT=${PASSERELLE_ROCKETCHAT_PORT:-18083}

case $1 in
up)
  if ! running rocketchat; then
    [[ -x $VENV/bin/python ]] || { say "the Python venv is missing: run scripts/setup"; exit 1; }
    say "starting the Rocket.Chat test double on port $RC_PORT"
    start rocketchat "$VENV/bin/python" "$ROOT/tests/servers/rocketchat.py" --port "$RC_PORT" \
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
