# A third, strict WebDAV server for the sync engine's tests: Apache httpd with mod_dav and
# mod_dav_fs (Debian package apache2). Unlike rclone and WsgiDAV it honours If-Match and
# If-None-Match on PUT, also on a name that does not exist yet, and the RFC 4918 `If:` header
# on MOVE, for the source and for the destination: the engine's precondition paths run for real.
# Its own config, DocumentRoot, lock database and pid file live under $STATE; nothing global
# (/etc/apache2) is read or touched. Runs in the foreground as its own process group.
APACHE_PORT=${PASSERELLE_APACHE_PORT:-18086}
APACHE_DIR=$STATE/apache
DAV_USER=passerelle
DAV_PASS=dav-pass-1

case $1 in
up)
  mkdir -p "$APACHE_DIR/run" "$APACHE_DIR/lock" "$STATE/webdav-apache"
  if ! running apache; then
    command -v apache2 >/dev/null || { say "apache2 is missing: run scripts/setup"; exit 1; }
    modules=/usr/lib/apache2/modules
    # Apache refuses to serve as root: it then drops to an unprivileged user, which must be able
    # to write the served folder and the lock database. As anyone else it just stays that user.
    user_lines=""
    if [[ $(id -u) == 0 ]]; then
      user_lines=$'User www-data\nGroup www-data'
      chown -R www-data:www-data "$APACHE_DIR/lock" "$STATE/webdav-apache"
    fi
    htpasswd -bcm "$APACHE_DIR/users" "$DAV_USER" "$DAV_PASS" 2>/dev/null
    cat >"$APACHE_DIR/httpd.conf" <<CONF
ServerRoot "$APACHE_DIR"
ServerName 127.0.0.1
Listen 127.0.0.1:$APACHE_PORT
$user_lines
DefaultRuntimeDir "$APACHE_DIR/run"
PidFile "$APACHE_DIR/run/httpd.pid"
Mutex file:$APACHE_DIR/run default
ErrorLog /dev/stderr
LogLevel warn

LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authn_core_module $modules/mod_authn_core.so
LoadModule authn_file_module $modules/mod_authn_file.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule authz_user_module $modules/mod_authz_user.so
LoadModule auth_basic_module $modules/mod_auth_basic.so
LoadModule dav_module $modules/mod_dav.so
LoadModule dav_fs_module $modules/mod_dav_fs.so

StartServers 1
ThreadsPerChild 16
MaxRequestWorkers 64
# ETags from modification time (microseconds) and size, Apache's default, said explicitly.
FileETag MTime Size
DavLockDB "$APACHE_DIR/lock/DavLock"

DocumentRoot "$STATE/webdav-apache"
<Directory "$STATE/webdav-apache">
  Dav On
  AuthType Basic
  AuthName "passerelle tests"
  AuthBasicProvider file
  AuthUserFile "$APACHE_DIR/users"
  Require valid-user
  AllowOverride None
</Directory>
CONF
    say "starting Apache httpd (mod_dav) on port $APACHE_PORT"
    start apache apache2 -f "$APACHE_DIR/httpd.conf" -DFOREGROUND
    # Any answer (401 included) means it listens; curl -f would treat 401 as a failure.
    deadline=$((SECONDS + 30))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X OPTIONS "http://127.0.0.1:$APACHE_PORT/") != 000 ]]; do
      if ((SECONDS >= deadline)) || ! running apache; then say "Apache did not start"; tail -20 "$STATE/apache.log" >&2; exit 1; fi
      sleep 0.3
    done
  fi
  echo "export PASSERELLE_TEST_APACHE_DAV=http://127.0.0.1:$APACHE_PORT/"
  echo "export PASSERELLE_TEST_APACHE_DAV_DIR=$STATE/webdav-apache"
  ;;
down) stop apache ;;
esac
