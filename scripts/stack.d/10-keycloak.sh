# Keycloak, the real one, from the Maven Central distribution (scripts/setup downloads it), in
# dev mode with the test realm of tests/fixtures imported at each fresh start.
KC_VERSION=26.5.6
KC_HOME=$CACHE/keycloak-$KC_VERSION
KC_PORT=${PASSERELLE_KC_PORT:-18080}
ISSUER=http://127.0.0.1:$KC_PORT/realms/passerelle

case $1 in
up)
  # Already serving our realm (started by this clone or another one): leave it alone. Never
  # start a second one over the same install, since a start wipes its database.
  if ! curl -fsS -o /dev/null --max-time 2 "$ISSUER/.well-known/openid-configuration" 2>/dev/null; then
    [[ -x $KC_HOME/bin/kc.sh ]] || { say "Keycloak is not installed: run scripts/setup"; exit 1; }
    # A fresh database each start, so every run begins from the committed realm.
    rm -rf "$KC_HOME/data/h2" "$KC_HOME/data/import"
    mkdir -p "$KC_HOME/data/import"
    cp "$ROOT/tests/fixtures/passerelle-realm.json" "$KC_HOME/data/import/"
    # Keycloak 26 supports OpenJDK 17, 21 and 25: take the newest the machine has.
    for j in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-amd64; do
      [[ -x $j/bin/java ]] && { export JAVA_HOME=$j; break; }
    done
    say "starting Keycloak $KC_VERSION on port $KC_PORT (Java: ${JAVA_HOME:-default})"
    export KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin
    export JAVA_OPTS_KC_HEAP="-Xms128m -Xmx512m -XX:MaxMetaspaceSize=256m"
    start keycloak "$KC_HOME/bin/kc.sh" start-dev --http-port "$KC_PORT" --http-host 127.0.0.1 --import-realm
    t0=$SECONDS
    wait_http "$ISSUER/.well-known/openid-configuration" 240 || { tail -40 "$STATE/keycloak.log" >&2; exit 1; }
    say "Keycloak ready in $((SECONDS - t0)) s"
  fi
  echo "export PASSERELLE_TEST_KEYCLOAK=http://127.0.0.1:$KC_PORT"
  echo "export PASSERELLE_TEST_ISSUER=$ISSUER"
  echo "export PASSERELLE_TEST_KC_ADMIN=admin:admin"
  ;;
down) stop keycloak ;;
esac
