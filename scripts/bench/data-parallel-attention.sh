#!/usr/bin/env bash
# Expert parallelism on CPU, the two shapes side by side: three serve ranks on 127.0.0.2–4 over the gRPC
# transport (the embedded tiny model, its experts sharded three ways), driven at CONCURRENCY streamed
# completions in all:
#   leader   rank 0 runs every request (attention, scheduler, KV cache) and the others compute experts;
#            `bench --url` against rank 0 with CONCURRENCY clients.
#   data     every rank runs its own requests (--data-parallel-attention true); one `bench --url` per rank,
#            CONCURRENCY/3 clients each, all at once.
# Prints one Markdown row per shape: total output tok/s, the requests, and each rank's resident memory.
#
#   scripts/bench/data-parallel-attention.sh [CONCURRENCY] [REQUESTS_PER_CLIENT]
# Needs: a Release build of the runtime (dotnet build runtime/DeepSeek.Runtime -c Release), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
concurrency=${1:-24}
per_client=${2:-4}
runtime=runtime/DeepSeek.Runtime/bin/Release/net10.0/deepseek-runtime
[ -x "$runtime" ] || { echo "error: build the runtime first: dotnet build runtime/DeepSeek.Runtime -c Release" >&2; exit 2; }
hosts=(127.0.0.2 127.0.0.3 127.0.0.4)
work=$(mktemp -d "${TMPDIR:-/tmp}/dp-bench.XXXXXX")
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done; pids=(); }
trap 'stop; rm -rf "$work"' EXIT
echo "group-token-for-bench" >"$work/token"
expert_port=$((20000 + RANDOM % 20000))
peers=$(printf "%s:$expert_port," "${hosts[@]}"); peers=${peers%,}

start_group() { # $1: true|false (data-parallel attention)
  for rank in 0 1 2; do
    "$runtime" serve --host "${hosts[$rank]}" --http-port 18080 --grpc-port 18081 --rank "$rank" --world-size 3 --peers "$peers" \
      --expert-port "$expert_port" --expert-transport grpc --group-token-file "$work/token" --data-parallel-attention "$1" \
      >"$work/rank$rank.log" 2>&1 &
    pids+=($!)
  done
  for rank in 0 1 2; do
    [ "$1" = true ] || [ "$rank" = 0 ] || continue
    for _ in $(seq 1 600); do
      curl -sf "http://${hosts[$rank]}:18080/ready" >/dev/null && break
      sleep 0.2
    done
    curl -sf "http://${hosts[$rank]}:18080/ready" >/dev/null || { echo "error: rank $rank not ready:" >&2; tail -20 "$work/rank$rank.log" >&2; exit 1; }
  done
}

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

bench() { # $1: host, $2: clients, $3: json file
  "$runtime" bench --url "http://$1:18080" --batches "$2" --prompt-tokens 64 --output-tokens 32 --requests-per-client "$per_client" --json "$3" >/dev/null
}

summarise() { # $1: shape, then json files
  local shape=$1; shift
  python3 - "$shape" "$@" <<'PY'
import json, sys
shape, files = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f))["rows"][0] for f in files]
tokens = sum(r["output_tokens_per_second"] for r in rows)
ok = sum(r["succeeded"] for r in rows); total = sum(r["requests"] for r in rows)
print(f"| {shape} | {sum(r['concurrency'] for r in rows)} | {ok}/{total} | {tokens:,.1f} |", end="")
PY
}

echo "| shape | clients | requests ok | output tok/s (all ranks) | RSS rank 0 / 1 / 2 (MiB) |"
echo "| --- | --- | --- | --- | --- |"
start_group false
bench "${hosts[0]}" "$concurrency" "$work/leader.json"
summarise "leader (rank 0 runs every request)" "$work/leader.json"
echo " $(rss "${pids[0]}") / $(rss "${pids[1]}") / $(rss "${pids[2]}") |"
stop

start_group true
per_rank=$((concurrency / 3))
benches=()
for rank in 0 1 2; do bench "${hosts[$rank]}" "$per_rank" "$work/data$rank.json" & benches+=($!); done
for pid in "${benches[@]}"; do wait "$pid"; done
summarise "data-parallel attention" "$work/data0.json" "$work/data1.json" "$work/data2.json"
echo " $(rss "${pids[0]}") / $(rss "${pids[1]}") / $(rss "${pids[2]}") |"
