# Chromium's WebDriver (Debian chromium-driver), for tests that drive Keycloak's login page.
CD_PORT=${PASSERELLE_CD_PORT:-19515}
case $1 in
up)
  if ! curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$CD_PORT/status" 2>/dev/null; then
    command -v chromedriver >/dev/null || { say "chromedriver is missing: run scripts/setup"; exit 1; }
    start chromedriver chromedriver --port="$CD_PORT" --allowed-ips=127.0.0.1
    wait_http "http://127.0.0.1:$CD_PORT/status" 30
  fi
  echo "export PASSERELLE_TEST_WEBDRIVER=http://127.0.0.1:$CD_PORT"
  ;;
down) stop chromedriver ;;
esac
