# Radicale (CalDAV, from the venv) for the calendar tests: htpasswd users alice, bob, carol and dave, storage
# under $STATE, wiped at each fresh start so every run begins empty. The tests write their own
# fixtures through CalDAV (MKCALENDAR + PUT), each into a calendar of its own.
RADICALE_PORT=${PASSERELLE_RADICALE_PORT:-18084}
RADICALE_DIR=$STATE/radicale

case $1 in
up)
  mkdir -p "$RADICALE_DIR"
  # Plain passwords: throwaway test accounts on a loopback-only server. Written at every `up`
  # (Radicale rereads the file when it changes), one user per test that needs its own account.
  printf 'alice:alice-cal-1\nbob:bob-cal-1\ncarol:carol-cal-1\ndave:dave-cal-1\n' >"$RADICALE_DIR/users.new"
  cmp -s "$RADICALE_DIR/users.new" "$RADICALE_DIR/users" 2>/dev/null || mv "$RADICALE_DIR/users.new" "$RADICALE_DIR/users"
  rm -f "$RADICALE_DIR/users.new"
  if ! running radicale; then
    [[ -x $VENV/bin/radicale ]] || { say "Radicale is not installed: run scripts/setup"; exit 1; }
    rm -rf "$RADICALE_DIR/collections"
    mkdir -p "$RADICALE_DIR/collections"
    cat >"$RADICALE_DIR/config" <<CONF
[server]
hosts = 127.0.0.1:$RADICALE_PORT

[auth]
type = htpasswd
htpasswd_filename = $RADICALE_DIR/users
htpasswd_encryption = plain
# Radicale slows down failed logins on purpose; tests try a wrong password once.
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = $RADICALE_DIR/collections

[logging]
level = warning
CONF
    say "starting Radicale on port $RADICALE_PORT"
    start radicale "$VENV/bin/radicale" --config "$RADICALE_DIR/config"
    # Any answer (401 included) means it listens; curl -f would treat 401 as a failure.
    deadline=$((SECONDS + 30))
    until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RADICALE_PORT/.web/"; do
      if ((SECONDS >= deadline)); then say "Radicale did not start"; tail -20 "$STATE/radicale.log" >&2; exit 1; fi
      sleep 0.3
    done
  fi
  echo "export PASSERELLE_TEST_CALDAV=http://127.0.0.1:$RADICALE_PORT/"
  echo "export PASSERELLE_TEST_CALDAV_USERS=alice:alice-cal-1,bob:bob-cal-1,carol:carol-cal-1,dave:dave-cal-1"
  ;;
down) stop radicale ;;
esac
