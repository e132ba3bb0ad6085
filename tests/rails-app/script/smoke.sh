#!/usr/bin/env bash
# Boots the fixture on a free port (or uses $BASE if given) and checks every
# endpoint. Usage: tests/rails-app/script/smoke.sh
set -uo pipefail
APP_DIR="$(cd "$(dirname "$0")/.." && pwd)"
fail=0; pid=""

if [ -z "${BASE:-}" ]; then
  PORT=$(ruby -rsocket -e 's=TCPServer.new("127.0.0.1",0); print s.addr[1]; s.close')
  BASE="http://127.0.0.1:$PORT"
  LOG=$(mktemp)
  puma -b "tcp://127.0.0.1:$PORT" -t 4:4 -w 0 "$APP_DIR/config.ru" >"$LOG" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
  for _ in $(seq 1 200); do curl -sf -o /dev/null "$BASE/up" && break; sleep 0.05; done
fi

# check NAME EXPECTED_STATUS EXPECTED_BODY_SUBSTRING curl-args...
check() {
  local name=$1 want_status=$2 want_body=$3; shift 3
  local out status body
  out=$(curl -s -w '\n%{http_code}' "$@")
  status=${out##*$'\n'}; body=${out%$'\n'*}
  if [ "$status" = "$want_status" ] && [[ "$body" == *"$want_body"* ]]; then
    echo "ok   $name"
  else
    echo "FAIL $name: status=$status body=${body:0:300}"; fail=1
  fi
}
gql() { check "$1" "$2" "$3" -H 'Content-Type: application/json' --data-binary "$4" "$BASE/graphql"; }

check "up" 200 "OK" "$BASE/up"
gql "named query" 200 '{"data":{"course":{"id":"1","title":"Intro to Rust"' '{"query":"query GetCourse($id: ID!) { course(id: $id) { id title lessons { id title } } }","operationName":"GetCourse","variables":{"id":"1"}}'
gql "NOT_FOUND" 200 '"code":"NOT_FOUND"' '{"query":"{ course(id: \"404\") { id } }"}'
gql "UNAUTHENTICATED" 200 '"code":"UNAUTHENTICATED"' '{"query":"{ me { id } }"}'
check "me with token" 200 '"me":{"id":"42"' -H 'Authorization: Bearer good' -H 'Content-Type: application/json' -d '{"query":"{ me { id } }"}' "$BASE/graphql"
gql "FORBIDDEN" 200 '"code":"FORBIDDEN"' '{"query":"{ forbidden }"}'
gql "BAD_USER_INPUT" 200 '"code":"BAD_USER_INPUT"' '{"query":"{ badInput(value: -1) }"}'
gql "INTERNAL_SERVER_ERROR" 200 '"code":"INTERNAL_SERVER_ERROR"' '{"query":"{ internalError }"}'
gql "non-null violation" 200 '{"data":null,"errors":[{"message":"Cannot return null' '{"query":"{ nonNullViolation }"}'
gql "custom code" 200 '"code":"TEAPOT"' '{"query":"{ customCode(code: \"TEAPOT\") }"}'
gql "multiple errors" 200 '"code":"NOT_FOUND"' '{"query":"{ multipleErrors }"}'
gql "validation error" 200 '"code":"undefinedField"' '{"query":"{ nope }"}'
gql "parse error" 200 '{"errors":[{"message":"Parse error' '{"query":"{ course(id: \"1\" }"}'
gql "crash -> 500.html" 500 '<!DOCTYPE html>' '{"query":"{ crash }"}'
gql "batch" 200 '[{"data":{"courses"' '[{"query":"{ courses { id } }"},{"query":"{ echo(text: \"b\") }"}]'
gql "APQ not found" 200 '{"errors":[{"message":"PersistedQueryNotFound","extensions":{"code":"PERSISTED_QUERY_NOT_FOUND"}}]}' '{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"0000"}}}'
gql "mutation" 200 '"createCourse":{"id"' '{"query":"mutation { createCourse(title: \"x\") { id } }"}'
check "GET graphql" 200 '{"data":{"echo":"get"}}' -G --data-urlencode 'query={ echo(text: "get") }' "$BASE/graphql"
check "application/graphql" 200 '{"data":{"echo":"raw"}}' -H 'Content-Type: application/graphql' --data-binary '{ echo(text: "raw") }' "$BASE/graphql"
check "multipart upload" 200 '{"data":{"uploadSize":' -F 'operations={"query":"mutation($f: Upload!) { uploadSize(file: $f) }","variables":{"f":null}}' -F 'map={"0":["variables.f"]}' -F "0=@$APP_DIR/files/report.txt" "$BASE/graphql"
check "rest show" 200 '"title":"Intro to Rust"' "$BASE/api/v1/courses/1"
check "rest 404" 404 '"not_found"' "$BASE/api/v1/courses/404"
check "rest create" 201 '"title":"t"' -H 'Content-Type: application/json' -d '{"title":"t"}' "$BASE/api/v1/courses"
check "rest nested" 200 '"user_id":"7"' "$BASE/api/v1/users/7/courses/2"
check "echo" 200 '"body_sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"' -H 'Content-Type: text/plain' --data-binary 'hello' "$BASE/echo"
check "status 429" 429 '"status":429' "$BASE/status/429"
check "status 503" 503 '"status":503' "$BASE/status/503"
check "boom" 500 'something went wrong' "$BASE/boom"
check "slow" 200 'slept 50ms' "$BASE/slow?ms=50"
check "big" 200 'xxxx' "$BASE/big?kb=2"
check "stream" 200 'event: tick' "$BASE/stream?chunks=2&ms=10"
check "download" 200 'slogate test fixture report' "$BASE/download"
check "x-accel-redirect" 200 '' -o /dev/null -H 'X-Sendfile-Type: X-Accel-Redirect' -H "X-Accel-Mapping: $APP_DIR/files/=/protected/" "$BASE/download"
curl -s -D - -o /dev/null -H 'X-Sendfile-Type: X-Accel-Redirect' -H "X-Accel-Mapping: $APP_DIR/files/=/protected/" "$BASE/download" \
  | grep -qi '^X-Accel-Redirect: /protected/report.txt' && echo "ok   x-accel-redirect header" || { echo "FAIL x-accel-redirect header"; fail=1; }
curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "$BASE/big?kb=64" | grep -qi '^Content-Encoding: gzip' \
  && echo "ok   gzip" || { echo "FAIL gzip"; fail=1; }
check "public not served" 404 'doesn' "$BASE/robots.txt"
ruby "$APP_DIR/script/cable_echo.rb" "${BASE/http/ws}/cable" >/dev/null && echo "ok   cable echo" || { echo "FAIL cable echo"; fail=1; }

[ $fail = 0 ] && echo "ALL OK" || echo "SOME CHECKS FAILED"
exit $fail
