# Two real, generic WebDAV servers for the sync engine's tests: `rclone serve webdav` (Debian
# package rclone; no folder ETags, ignores X-OC-Mtime) and WsgiDAV (PyPI, in the dev venv).
# Each serves its own folder under $STATE with Basic auth. Tests work in a fresh subfolder each.
RCLONE_PORT=${PASSERELLE_RCLONE_PORT:-18081}
WSGIDAV_PORT=${PASSERELLE_WSGIDAV_PORT:-18082}
DAV_USER=passerelle
DAV_PASS=dav-pass-1
case $1 in
up)
  mkdir -p "$STATE/webdav-rclone" "$STATE/webdav-wsgidav"
  if ! running rclone-webdav; then
    command -v rclone >/dev/null || { say "rclone is missing: run scripts/setup"; exit 1; }
    : >"$STATE/rclone.conf"
    start rclone-webdav env RCLONE_CONFIG="$STATE/rclone.conf" rclone serve webdav "$STATE/webdav-rclone" \
      --addr "127.0.0.1:$RCLONE_PORT" --user "$DAV_USER" --pass "$DAV_PASS"
    wait_http "http://$DAV_USER:$DAV_PASS@127.0.0.1:$RCLONE_PORT/" 30 || { tail -20 "$STATE/rclone-webdav.log" >&2; exit 1; }
  fi
  if ! running wsgidav; then
    [[ -x $VENV/bin/wsgidav ]] || { say "wsgidav is missing from $VENV: run scripts/setup"; exit 1; }
    cat >"$STATE/wsgidav.yaml" <<YAML
host: 127.0.0.1
port: $WSGIDAV_PORT
server: cheroot
provider_mapping:
  "/": "$STATE/webdav-wsgidav"
http_authenticator:
  accept_basic: true
  accept_digest: false
  default_to_digest: false
simple_dc:
  user_mapping:
    "*":
      "$DAV_USER":
        password: "$DAV_PASS"
verbose: 1
logging:
  enable_loggers: []
YAML
    start wsgidav "$VENV/bin/wsgidav" --config "$STATE/wsgidav.yaml"
    wait_http "http://$DAV_USER:$DAV_PASS@127.0.0.1:$WSGIDAV_PORT/" 30 || { tail -20 "$STATE/wsgidav.log" >&2; exit 1; }
  fi
  echo "export PASSERELLE_TEST_RCLONE_DAV=http://127.0.0.1:$RCLONE_PORT/"
  echo "export PASSERELLE_TEST_RCLONE_DAV_DIR=$STATE/webdav-rclone"
  echo "export PASSERELLE_TEST_WSGIDAV=http://127.0.0.1:$WSGIDAV_PORT/"
  echo "export PASSERELLE_TEST_WSGIDAV_DIR=$STATE/webdav-wsgidav"
  echo "export PASSERELLE_TEST_DAV_USER=$DAV_USER"
  echo "export PASSERELLE_TEST_DAV_PASSWORD=$DAV_PASS"
  ;;
down)
  stop wsgidav
  stop rclone-webdav
  ;;
esac
