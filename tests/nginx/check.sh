#!/usr/bin/env bash
# Boots the Rails fixture (Puma) and nginx with rails.conf.template on free ports and prints
# what nginx does in each parity case (the observations recorded in docs/replacing-nginx.md).
#   tests/nginx/check.sh            # needs nginx, puma, curl, python3
# KEEP=1 leaves the temp prefix in place for inspection.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
app=$repo/tests/rails-app

for tool in nginx puma curl python3; do
  command -v "$tool" >/dev/null || { echo "check.sh: $tool is missing (run scripts/setup.sh)" >&2; exit 1; }
done

prefix=$(mktemp -d /tmp/slogate-nginx-parity.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] && echo "kept $prefix" >&2 || rm -rf "$prefix"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url [seconds]
  for _ in $(seq 1 $(( ${2:-20} * 10 ))); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "check.sh: $1 did not come up" >&2; return 1
}

puma_port=$(free_port)
nginx_port=$(free_port)
# A copy of public/ so the maintenance flag ($document_root/../tmp/maintenance.txt, the
# production value) lives in the temp dir, not in the repository.
mkdir -p "$prefix/app/tmp" "$prefix/logs"
cp -a "$app/public" "$prefix/app/public"

EXIT_WITH_PARENT=$$ puma -b "tcp://127.0.0.1:$puma_port" -t 4:4 -w 0 "$app/config.ru" \
  >"$prefix/logs/puma.log" 2>&1 &
pids+=($!)
puma_pid=$!

"$here/render.sh" PREFIX="$prefix" PORT="$nginx_port" UPSTREAM="127.0.0.1:$puma_port" \
  ROOT="$prefix/app/public" FILES="$app/files" \
  MAINTENANCE='$document_root/../tmp/maintenance.txt' READ_TIMEOUT=1s \
  ERROR_LOG="$prefix/logs/error.log" ACCESS_LOG="$prefix/logs/access.log" \
  >"$prefix/nginx.conf"
user_directive=""
[ "$(id -u)" = 0 ] && user_directive="user root;"
nginx -p "$prefix" -c "$prefix/nginx.conf" -e stderr \
  -g "daemon off; pid $prefix/nginx.pid; $user_directive" 2>"$prefix/logs/nginx.stderr" &
pids+=($!)

wait_http "http://127.0.0.1:$puma_port/up" 60
wait_http "http://127.0.0.1:$nginx_port/robots.txt"
base="http://127.0.0.1:$nginx_port"

# case NAME curl-args...: prints the status line, chosen headers and the start of the body.
case_() {
  local name=$1; shift
  echo "### $name"
  curl -s -D "$prefix/h" -o "$prefix/b" "$@" || echo "(curl exit $?)"
  head -1 "$prefix/h" | tr -d '\r'
  grep -iE '^(content-type|content-length|content-encoding|transfer-encoding|etag|last-modified|cache-control|expires|content-range|vary|x-request-id|x-accel-redirect|content-disposition|location|server|accept-ranges):' "$prefix/h" | tr -d '\r' | sed 's/^/  /'
  if grep -qi '^content-encoding: gzip' "$prefix/h"; then
    echo "  body: gzip, $(wc -c <"$prefix/b") bytes -> $(gzip -dc <"$prefix/b" | wc -c) bytes"
  else
    echo "  body: $(head -c 160 "$prefix/b" | tr '\n' ' ') [$(wc -c <"$prefix/b") bytes]"
  fi
}

gql='{"query":"query GetCourse($id: ID!) { course(id: $id) { id title } }","operationName":"GetCourse","variables":{"id":"1"}}'
case_ "GraphQL POST" -X POST -H 'Content-Type: application/json' --data "$gql" "$base/graphql"
case_ "GET /echo (headers Rails sees)" -H 'X-Request-Id: parity-test-1' -H 'Proxy: http://evil' "$base/echo?x=1"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ("headers","remote_ip","host","port","protocol","url","request_id") if k in d}, indent=1, sort_keys=True))' "$prefix/b"
head -c $((2 * 1024 * 1024)) /dev/zero >"$prefix/2m.bin"
head -c 1000000 /dev/zero >"$prefix/1m.bin"
case_ "POST 2 MiB (> client_max_body_size 1m)" -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$prefix/2m.bin" "$base/echo"
case_ "POST 1,000,000 bytes (< 1m, spooled to client_body_temp)" -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$prefix/1m.bin" "$base/echo"
case_ "slow upstream past proxy_read_timeout 1s" "$base/slow?ms=2500"
case_ "upstream status passes through (/status/503)" "$base/status/503"
case_ "Rails 500 passes through (/boom)" "$base/boom"
case_ "static file" "$base/robots.txt"
etag=$(grep -i '^etag:' "$prefix/h" | cut -d' ' -f2- | tr -d '\r')
lm=$(grep -i '^last-modified:' "$prefix/h" | cut -d' ' -f2- | tr -d '\r')
case_ "static If-None-Match" -H "If-None-Match: $etag" "$base/robots.txt"
case_ "static If-Modified-Since" -H "If-Modified-Since: $lm" "$base/robots.txt"
case_ "static Range bytes=0-9" -H 'Range: bytes=0-9' "$base/robots.txt"
case_ "POST to a static file" -X POST -H 'Content-Type: application/json' --data '{}' "$base/robots.txt"
case_ "asset with Accept-Encoding: gzip (gzip_static)" -H 'Accept-Encoding: gzip' "$base/assets/app-abc123.js"
case_ "asset without Accept-Encoding" "$base/assets/app-abc123.js"
case_ "missing asset" "$base/assets/nope-123.js"
case_ "dynamic JSON with Accept-Encoding: gzip (/big?kb=4)" -H 'Accept-Encoding: gzip' "$base/big?kb=4"
case_ "/download (Rails answers X-Accel-Redirect, nginx sends the file)" "$base/download"
case_ "/protected/ from outside (internal)" "$base/protected/report.txt"
echo "### /stream (SSE, proxy_buffering off): 3 events 300 ms apart, arrival time of each"
python3 - "$nginx_port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /stream?chunks=3&ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t0, seen = time.time(), 0
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    n = chunk.count(b"event: tick")
    if n:
        seen += n
        print("  %.2fs: %d event(s), %d so far" % (time.time() - t0, n, seen))
PY

touch "$prefix/app/tmp/maintenance.txt"
case_ "maintenance on: GET /" "$base/"
case_ "maintenance on: POST /graphql" -X POST -H 'Content-Type: application/json' --data "$gql" "$base/graphql"
case_ "maintenance on: asset" "$base/assets/app-abc123.js"
rm "$prefix/app/tmp/maintenance.txt"
case_ "maintenance off again" "$base/up"

kill "$puma_pid"; wait "$puma_pid" 2>/dev/null || true
case_ "upstream down: GET /echo" "$base/echo"
case_ "upstream down: POST /graphql" -X POST -H 'Content-Type: application/json' --data "$gql" "$base/graphql"

echo "### access log (last 2 lines)"
tail -2 "$prefix/logs/access.log"
echo "### nginx stderr / error log warnings"
cat "$prefix/logs/nginx.stderr"
grep -E '\[(warn|error|alert|crit|emerg)\]' "$prefix/logs/error.log" | tail -8 || true
