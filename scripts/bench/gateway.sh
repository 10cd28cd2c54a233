#!/usr/bin/env bash
# The gateway's cost beside nginx as a plain reverse proxy, in one run (issue #29): a fast fake upstream
# (nginx answering every chat completion with the same small JSON at once), then wrk sends the same
# non-streamed chat completion to it directly, through nginx (proxy_pass with upstream keep-alive),
# and through deepseek-gateway (open, and with an API key), at concurrency 1 and 64. Prints one Markdown
# table: requests/s, p50 and p99 latency, and what each proxy adds to the direct p50 and p99.
#
#   scripts/bench/gateway.sh [SECONDS_PER_RUN]
#
# Beside them, YARP's forwarder alone (scripts/bench/yarp-floor, built here): the library the gateway forwards
# with, doing nothing of the gateway's own, i.e. the floor under the gateway's cost.
#
# Needs: a Release build of the gateway (dotnet build gateway/DeepSeek.Gateway -c Release). Installs wrk
# (a Debian package) when missing, and unpacks Debian's nginx into .tools/nginx without installing it
# (nothing under /etc, no service: it runs from a config written here, with its own prefix and temp paths).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
gateway=gateway/DeepSeek.Gateway/bin/Release/net10.0/deepseek-gateway
[ -x "$gateway" ] || { echo "error: build the gateway first: dotnet build gateway/DeepSeek.Gateway -c Release" >&2; exit 2; }
floor=scripts/bench/yarp-floor/bin/Release/net10.0/yarp-floor
dotnet build scripts/bench/yarp-floor -c Release -nologo -v quiet -clp:ErrorsOnly > /dev/null

# --- tools -------------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: this benchmark needs wrk; install it (Debian: sudo apt-get install wrk) and rerun" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
nginx=.tools/nginx/usr/sbin/nginx
if [ ! -x "$nginx" ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "error: unpacking Debian's nginx needs apt-get" >&2; exit 1; }
  download=$(mktemp -d)
  (cd "$download" && apt-get download nginx >/dev/null 2>&1 || { apt-get update -qq && apt-get download nginx >/dev/null; })
  mkdir -p .tools/nginx
  dpkg -x "$download"/nginx_*.deb .tools/nginx
  rm -rf "$download"
fi
missing_libraries=$(ldd "$nginx" | grep "not found" || true)
[ -z "$missing_libraries" ] || { echo "error: Debian's nginx needs libraries this machine lacks: $missing_libraries" >&2; exit 1; }

# --- processes ---------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/gateway-bench.XXXXXX")
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done; pids=(); }
trap 'stop; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
upstream_port=$(port); proxy_port=$(port); gateway_port=$(port); keyed_port=$(port); floor_port=$(port)

completion='{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}'
mkdir -p "$work/temp"
cat > "$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/temp/body;
  proxy_temp_path $work/temp/proxy;
  fastcgi_temp_path $work/temp/fastcgi;
  uwsgi_temp_path $work/temp/uwsgi;
  scgi_temp_path $work/temp/scgi;
  keepalive_requests 1000000;
  # The fake upstream: readiness and a canned chat completion, answered at once.
  server {
    listen 127.0.0.1:$upstream_port;
    location = /ready { return 200 "ok"; }
    location / { default_type application/json; return 200 '$completion'; }
  }
  # nginx as a plain reverse proxy to it.
  upstream fake { server 127.0.0.1:$upstream_port; keepalive 128; }
  server {
    listen 127.0.0.1:$proxy_port;
    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
"$nginx" -e stderr -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)

key=bench-key-0123456789
key_hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
cat > "$work/gateway.yaml" <<EOF
listen: {host: 127.0.0.1, port: $gateway_port}
models:
  - name: bench
    variants:
      - {name: a, weight: 100, endpoints: ["http://127.0.0.1:$upstream_port"]}
EOF
sed -e "s/port: $gateway_port/port: $keyed_port/" "$work/gateway.yaml" > "$work/gateway-keyed.yaml"
printf 'keys:\n  - {id: bench, sha256: %s, models: ["bench"]}\n' "$key_hash" >> "$work/gateway-keyed.yaml"
# The gateway logs a line per request at Information; a proxy under load writes no access log (nginx's is off).
Logging__LogLevel__Default=Warning "$gateway" --config "$work/gateway.yaml" > "$work/gateway.log" 2>&1 &
pids+=($!)
Logging__LogLevel__Default=Warning "$gateway" --config "$work/gateway-keyed.yaml" > "$work/gateway-keyed.log" 2>&1 &
pids+=($!)

"$floor" "$floor_port" "http://127.0.0.1:$upstream_port" > "$work/yarp-floor.log" 2>&1 &
pids+=($!)

wait_ready() { # $1 url: up to 60 s for a 200 from the model list or readiness
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null -H "Authorization: Bearer $key" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $1 did not answer within 60 s" >&2; cat "$work"/*.log >&2; exit 1
}
wait_ready "http://127.0.0.1:$upstream_port/ready"
wait_ready "http://127.0.0.1:$proxy_port/ready"
wait_ready "http://127.0.0.1:$gateway_port/v1/models"
wait_ready "http://127.0.0.1:$keyed_port/v1/models"
wait_ready "http://127.0.0.1:$floor_port/ready"

# --- load --------------------------------------------------------------------------------------------
cat > "$work/request.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1}'
local key = os.getenv("BENCH_KEY")
if key ~= nil and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
EOF

# One wrk run: prints "requests/s p50_ms p99_ms errors".
run() { # $1 port, $2 connections, $3 key or ""
  local threads=$(( $2 > 1 ? 2 : 1 ))
  BENCH_KEY=$3 wrk -t"$threads" -c"$2" -d"${seconds}s" --latency -s "$work/request.lua" "http://127.0.0.1:$1/v1/chat/completions" > "$work/wrk.txt"
  python3 - "$work/wrk.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def ms(value, unit): return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
percentiles = {int(p): ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
print(f"{rate:.0f} {percentiles[50]:.3f} {percentiles[99]:.3f} {errors}")
EOF
}

# Warm every path (JIT, connection pools) before measuring.
for target in "$upstream_port" "$proxy_port" "$gateway_port" "$floor_port"; do BENCH_KEY= wrk -t1 -c8 -d2s -s "$work/request.lua" "http://127.0.0.1:$target/v1/chat/completions" > /dev/null; done
BENCH_KEY=$key wrk -t1 -c8 -d2s -s "$work/request.lua" "http://127.0.0.1:$keyed_port/v1/chat/completions" > /dev/null

echo "gateway benchmark: $(nproc) CPUs, $(uname -m), ${seconds} s per run, wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), nginx $("$nginx" -v 2>&1 | cut -d/ -f2)"
echo
echo "| path | connections | requests/s | p50 ms | p99 ms | p50 added ms | p99 added ms | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for connections in 1 64; do
  read -r direct_rate direct_p50 direct_p99 direct_errors < <(run "$upstream_port" "$connections" "")
  echo "| direct to the fake upstream | $connections | $direct_rate | $direct_p50 | $direct_p99 | – | – | $direct_errors |"
  for path in "nginx proxy_pass:$proxy_port:" "YARP forwarder alone:$floor_port:" "deepseek-gateway, open:$gateway_port:" "deepseek-gateway, API key:$keyed_port:$key"; do
    IFS=: read -r name target with_key <<< "$path"
    read -r rate p50 p99 errors < <(run "$target" "$connections" "$with_key")
    added50=$(python3 -c "print(f'{$p50 - $direct_p50:.3f}')")
    added99=$(python3 -c "print(f'{$p99 - $direct_p99:.3f}')")
    echo "| $name | $connections | $rate | $p50 | $p99 | $added50 | $added99 | $errors |"
  done
done
