#!/usr/bin/env bash
# One device call on a GPU host: the engine's GPU benchmarks beside the HF transformers peer, in one run.
# Needs: the runtime bundle from scripts/publish-gpu-bundle.sh (BUNDLE, default ./deepseek-runtime-linux-x64.tar.xz),
# PyTorch with CUDA and transformers, optionally a prebuilt helper (NATIVE_SO) else it is built.
# PHASES picks parts (default all), run in this order: native decode graphs correctness long load peer quant fp8-probe fp8 v3 structured lora
# (lora's correctness part needs the fixtures of scripts/gpu/make_lora_fixture.py under tests/fixtures)
# ('quick': quant without its accuracy runs, peer without its long prompts)
# Results: $OUT/*.json and $OUT/run.log; peak device memory per part from nvidia-smi sampling ($OUT/*.mem).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
out="${OUT:-/tmp/out}"; mkdir -p "$out"
phases="${PHASES:-native decode graphs correctness long load peer quant fp8-probe fp8 v3 structured lora}"
budget="${BUDGET:-570}"
t0=$(date +%s)
left() { local l=$((budget - ($(date +%s) - t0))); local want=$1; echo $(( l < want ? (l > 5 ? l : 5) : want )); }
log() { echo "== $* (t+$(( $(date +%s) - t0 ))s)"; }
exec > >(tee -a "$out/run.log") 2>&1

# Peak device memory of one command: nvidia-smi sampled every 100 ms (the process's whole footprint:
# weights, KV cache and the caching allocator's reserve).
peak() {
  local name=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$out/$name.mem" &
  local sampler=$!
  "$@"; local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  echo "peak MiB ($name): $(sort -n "$out/$name.mem" | tail -1) rc=$rc"
  return $rc
}

log machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'
nproc

bundle="${BUNDLE:-$repo/deepseek-runtime-linux-x64.tar.xz}"
rm -rf /tmp/rt && mkdir -p /tmp/rt && tar -C /tmp/rt -xJf "$bundle"
rt=/tmp/rt/deepseek-runtime/deepseek-runtime
if [[ -n "${NATIVE_SO:-}" && -f "$NATIVE_SO" ]]; then
  cp "$NATIVE_SO" /tmp/rt/deepseek-runtime/
elif [[ $phases == *native* ]]; then
  log build-native
  timeout "$(left 240)" bash scripts/build-native.sh "$out/native" && cp "$out/native/libdeepseek_native.so" /tmp/rt/deepseek-runtime/
fi
export DEEPSEEK_LIBTORCH_DIR="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

if [[ $phases == *decode* ]]; then
  log "bench: V2-Lite shape, bf16, 256-token prompts, 48 new tokens, batch 1/8/32"
  peak bench-decode timeout "$(left 200)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite --batches 1,8,32 \
    --prompt-tokens 256 --output-tokens 48 --bandwidth-gbs 4800 --json "$out/bench-decode.json" | grep "│"
fi

if [[ $phases == *graphs* ]]; then
  # The engine's own batches (all prompts submitted together, so every step has the same sequences in
  # both runs), random V2-Lite-shaped bf16 weights of one seed, greedy, 256 new tokens.
  for graphs in true false; do
    log "bench --cuda-graphs $graphs: batch 1 and 32, 64-token prompts, 256 new tokens"
    timeout "$(left 150)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite --batches 1,32 --prompt-tokens 64 \
      --output-tokens 256 --cuda-graphs $graphs --bandwidth-gbs 4800 --json "$out/graphs-$graphs.json" | grep "│"
  done
  python3 - "$out/graphs-true.json" "$out/graphs-false.json" <<'PY' | tee "$out/graphs-check.json"
import json, sys
graphs, eager = (json.load(open(f))["rows"] for f in sys.argv[1:3])
rows = []
for g, e in zip(graphs, eager):
    pairs = list(zip(g["token_ids"], e["token_ids"]))
    first = [next((i for i, (a, b) in enumerate(zip(x, y)) if a != b), None) for x, y in pairs]
    rows.append({"batch": g["batch"], "requests": len(pairs), "tokens_each": len(pairs[0][0]) if pairs else 0,
                 "equal": sum(x == y for x, y in pairs), "first_differences": [f for f in first if f is not None],
                 "decode_tok_s_graphs": round(g["decode_tokens_per_second"], 1), "decode_tok_s_eager": round(e["decode_tokens_per_second"], 1)})
print(json.dumps(rows))
PY
fi

if [[ $phases == *correctness* ]]; then
  for fixture in deepseek-v3-tiny deepseek-v2-lite-tiny; do
    log "generate --device cuda --dtype float32 on $fixture"
    python3 - "$rt" "tests/fixtures/$fixture" <<'PY' > "$out/correctness-$fixture.json"
import json, subprocess, sys
rt, fixture = sys.argv[1], sys.argv[2]
ref = json.load(open(f"{fixture}/reference.json"))
rows = []
for p in ref["prompts"]:
    ids = ",".join(map(str, p["input_ids"]))
    r = subprocess.run([rt, "generate", "--model", fixture, "--device", "cuda", "--dtype", "float32", "--prompt-ids", ids,
                        "--max-new-tokens", str(len(p["greedy"])), "--temperature", "0", "--output", "json"],
                       capture_output=True, text=True, timeout=120)
    got = json.loads(r.stdout)["token_ids"] if r.returncode == 0 else None
    first_tie = next((i for i, m in enumerate(p["greedy_margins"]) if m < 1e-3), len(p["greedy"]))
    # generate stops at the end-of-sequence token (id 1 in the fixtures); the reference runs past it.
    if got and got[-1] == 1 and got == p["greedy"][:len(got)]:
        first_tie = min(first_tie, len(got))
    rows.append({"prompt_tokens": len(p["input_ids"]), "equal": got == p["greedy"] or (bool(got) and got[-1] == 1 and got == p["greedy"][:len(got)]),
                 "equal_up_to_first_near_tie": got is not None and got[:first_tie] == p["greedy"][:first_tie],
                 "stderr": r.stderr[-300:] if r.returncode else ""})
print(json.dumps({"fixture": fixture, "rows": rows}))
PY
    cat "$out/correctness-$fixture.json"; echo
  done
fi

if [[ $phases == *long* ]]; then
  for prompt in 32768 131072; do
    log "bench: one $prompt-token prompt, chunks of 8192 tokens"
    peak "bench-long-$prompt" timeout "$(left 150)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite --batches 1 \
      --prompt-tokens "$prompt" --output-tokens 8 --max-batch-tokens 8192 --bandwidth-gbs 4800 --json "$out/bench-long-$prompt.json" | grep "│"
  done
  log "bench: one 32768-token prompt in one step (the fresh causal form, flash-eligible)"
  peak "bench-long-32768-one-step" timeout "$(left 150)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite --batches 1 \
    --prompt-tokens 32768 --output-tokens 8 --max-batch-tokens 32768 --bandwidth-gbs 4800 --json "$out/bench-long-32768-one-step.json" | grep "│"
fi

if [[ $phases == *load* ]]; then
  log "time to ready: serve on a V2-Lite-shaped random bf16 checkpoint in the published sharded layout"
  python3 scripts/gpu/make_random_checkpoint.py /tmp/v2lite && sync
  # A cold page cache where the container may drop it; otherwise the checkpoint's own pages are
  # evicted (posix_fadvise DONTNEED needs no privilege; the files are clean after sync).
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then cache=cold
  elif python3 -c "import glob,os,sys
for f in glob.glob('/tmp/v2lite/*.safetensors'):
    fd = os.open(f, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)"; then cache=cold-checkpoint-evicted
  else cache=warm; fi
  started=$(date +%s.%N)
  "$rt" serve --model /tmp/v2lite --device cuda --dtype bfloat16 --host 127.0.0.1 --http-port 18000 --grpc-port 18001 > "$out/serve-load.log" 2>&1 &
  pid=$!
  ready=""
  for _ in $(seq 1 1200); do
    if curl -fs http://127.0.0.1:18000/ready > /dev/null 2>&1; then ready=$(date +%s.%N); break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
  python3 -c "import json,sys; s,r=float(sys.argv[1]),sys.argv[2]; print(json.dumps({'page_cache': sys.argv[3], 'ready_seconds': round(float(r)-s,1) if r else None}))" "$started" "$ready" "$cache" | tee "$out/load.json"
  grep -i -E "load|ready|progress|weights|graphs|native|serving" "$out/serve-load.log" | head -40
  rm -rf /tmp/v2lite
fi

if [[ $phases == *peer* ]]; then
  log "peer: HF transformers, same shape, batch 1/8/32"
  peak peer-decode timeout "$(left 200)" python3 scripts/gpu/hf_peer_bench.py --new 48 --prompt 256 | tee "$out/peer-decode.jsonl"
  for prompt in 32768 131072; do
    [[ $phases == *quick* ]] && break  # 'quick': the batch rows only
    log "peer: one $prompt-token prompt"
    peak "peer-long-$prompt" timeout "$(left 120)" python3 scripts/gpu/hf_peer_bench.py --batches 1 --new 2 --prompt "$prompt" | tee "$out/peer-long-$prompt.jsonl"
  done
fi
if [[ $phases == *quant* ]]; then
  # docs/quantization.md: FP8 checkpoints on CUDA against their HF reference; int4 on CUDA (the helper's
  # kernels) against the CPU reference path on the same weights; memory and decode tok/s, bf16 against int4.
  if [[ $phases != *quick* ]]; then  # 'quick': the quant benches only, not the accuracy runs
  for fixture in deepseek-v3-tiny-fp8 deepseek-v3-tiny-fp8-sharded; do
    for dtype in float32 bfloat16; do
      log "generate --device cuda --dtype $dtype on $fixture"
      python3 - "$rt" "tests/fixtures/$fixture" "$dtype" <<'PY' | tee "$out/quant-fp8-$fixture-$dtype.json"
import json, subprocess, sys
rt, fixture, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
ref = json.load(open(f"{fixture}/reference.json"))
rows = []
for p in ref["prompts"]:
    r = subprocess.run([rt, "generate", "--model", fixture, "--device", "cuda", "--dtype", dtype, "--prompt-ids",
                        ",".join(map(str, p["input_ids"])), "--max-new-tokens", str(len(p["greedy"])), "--output", "json"],
                       capture_output=True, text=True, timeout=120)
    got = json.loads(r.stdout.strip().splitlines()[-1])["token_ids"] if r.returncode == 0 else None
    first_tie = next((i for i, m in enumerate(p["greedy_margins"]) if m < 1e-3), len(p["greedy"]))
    steps = 0 if got is None else next((i for i, (a, b) in enumerate(zip(got, p["greedy"])) if a != b), len(p["greedy"]))
    rows.append({"equal_up_to_first_near_tie": got is not None and got[:first_tie] == p["greedy"][:first_tie],
                 "steps_matched": steps, "stderr": r.stderr[-300:] if r.returncode else ""})
print(json.dumps({"fixture": fixture, "dtype": dtype, "rows": rows}))
PY
    done
  done
  log "int4: CUDA kernels against the CPU reference path on a model whose widths take group 128"
  python3 scripts/gpu/make_int4_check_model.py /tmp/int4-check
  for d in cpu cuda; do
    "$rt" generate --model /tmp/int4-check --device $d --dtype bfloat16 --quantization int4 --prompt-ids 1,2,3,4,5,6,7,8,9,10 \
      --max-new-tokens 24 --output json --logprobs 1 > "$out/quant-int4-$d.json" 2> "$out/quant-int4-$d.err"; echo "int4 $d rc=$?"
  done
  python3 - "$out/quant-int4-cpu.json" "$out/quant-int4-cuda.json" <<'PY' | tee "$out/quant-int4-check.json"
import json, sys
a, b = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:3])
steps = next((i for i, (x, y) in enumerate(zip(a["token_ids"], b["token_ids"])) if x != y), len(a["token_ids"]))
print(json.dumps({"greedy_steps_equal": steps, "of": len(a["token_ids"]), "cpu": a["token_ids"], "cuda": b["token_ids"], "cpu_logprobs": a.get("logprobs"), "cuda_logprobs": b.get("logprobs")}))
PY
  rm -rf /tmp/int4-check
  log "int4 accuracy on the V2-Lite shape (4 layers, random bf16): greedy and log-probabilities, none against int4, on CUDA"
  python3 scripts/gpu/make_random_checkpoint.py /tmp/v2lite-4 --layers 4 > /dev/null
  for q in none int4; do
    for prompt in 11,22,33,44,55,66,77,88 1000,2000,3000,4000 5,50,500,5000,50000; do
      "$rt" generate --model /tmp/v2lite-4 --device cuda --dtype bfloat16 --quantization $q --prompt-ids $prompt \
        --max-new-tokens 16 --output json --logprobs 1 2>> "$out/quant-v2lite-$q.err" | tail -1 >> "$out/quant-v2lite-$q.jsonl"
    done
  done
  python3 - "$out/quant-v2lite-none.jsonl" "$out/quant-v2lite-int4.jsonl" <<'PY' | tee "$out/quant-v2lite.json"
import json, sys
a, b = ([json.loads(l) for l in open(f) if l.strip()] for f in sys.argv[1:3])
rows = []
for x, y in zip(a, b):
    steps = next((i for i, (s, t) in enumerate(zip(x["token_ids"], y["token_ids"])) if s != t), len(x["token_ids"]))
    rows.append({"greedy_steps_equal": steps, "of": len(x["token_ids"]), "none": x, "int4": y})
print(json.dumps(rows))
PY
  rm -rf /tmp/v2lite-4
  fi
  for q in none int4; do
    log "bench: V2-Lite shape, bf16, --quantization $q, batch 1/32"
    peak "bench-quant-$q" timeout "$(left 200)" "$rt" bench --device cuda --dtype bfloat16 --quantization $q --shape deepseek-v2-lite \
      --batches 1,32 --prompt-tokens 256 --output-tokens 48 --bandwidth-gbs 4800 --json "$out/bench-quant-$q.json" | grep -E "│|resident|int4:"
  done
  log "bench: V2-Lite shape from an FP8 checkpoint in the published layout, --dtype bfloat16, batch 1/32"
  python3 scripts/gpu/make_random_checkpoint.py /tmp/v2lite-fp8 --fp8
  peak bench-quant-fp8 timeout "$(left 200)" "$rt" bench --device cuda --dtype bfloat16 --model /tmp/v2lite-fp8 \
    --batches 1,32 --prompt-tokens 256 --output-tokens 48 --bandwidth-gbs 4800 --json "$out/bench-quant-fp8.json" | grep -E "│|resident"
  rm -rf /tmp/v2lite-fp8
fi
if [[ $phases == *fp8-probe* ]]; then
  log "fp8: torch._scaled_mm with block scales on this GPU"
  timeout "$(left 45)" python3 scripts/gpu/fp8_scaled_mm_probe.py > "$out/fp8-probe.txt" 2>&1; tail -45 "$out/fp8-probe.txt"
fi
if [[ " $phases " == *" fp8 "* ]]; then
  # docs/quantization.md "FP8 on the GPU": the helper's FP8 kernels against bf16 holding the same values,
  # each family forced in turn (DEEPSEEK_FP8_KERNELS) and the automatic choice; then one FP8 checkpoint
  # served two ways in one run. FP8_KERNELS and FP8_ROWS narrow the first part.
  for kernels in ${FP8_KERNELS:-auto tensor-cores cuda-cores dequantize}; do
    log "bench native --sections fp8 with DEEPSEEK_FP8_KERNELS=$kernels"
    DEEPSEEK_FP8_KERNELS=$kernels timeout "$(left 120)" "$rt" bench native --sections fp8 --fp8-rows ${FP8_ROWS:-1,2,8,32,128,512,2048} \
      --json "$out/native-fp8-$kernels.json" | grep -E "│|fp8|error"
  done
  log "fp8: V2-Lite shape, 8 layers, one FP8 checkpoint: dequantised to bf16 at load (none) against FP8-resident (fp8)"
  python3 scripts/gpu/make_random_checkpoint.py /tmp/v2lite-fp8-8 --layers 8 --fp8 > /dev/null
  for q in none fp8; do
    peak "bench-fp8-$q" timeout "$(left 200)" "$rt" bench --device cuda --dtype bfloat16 --model /tmp/v2lite-fp8-8 --quantization $q \
      --batches 1,32 --prompt-tokens 256 --output-tokens 64 --bandwidth-gbs 4800 --json "$out/bench-fp8-$q.json" | grep -E "│|resident|native helper"
  done
  # FP8_MODEL_KERNELS: the FP8 model again with a kernel family forced (where prefill's products go)
  for kernels in ${FP8_MODEL_KERNELS:-}; do
    log "bench --quantization fp8 with DEEPSEEK_FP8_KERNELS=$kernels"
    DEEPSEEK_FP8_KERNELS=$kernels timeout "$(left 200)" "$rt" bench --device cuda --dtype bfloat16 --model /tmp/v2lite-fp8-8 --quantization fp8 \
      --batches 1,32 --prompt-tokens 256 --output-tokens 64 --bandwidth-gbs 4800 --json "$out/bench-fp8-fp8-$kernels.json" | grep -E "│"
  done
  # Greedy agreement with each token's logit margin (a run of its own: the top-2 log-probabilities cost time)
  for q in none fp8; do
    timeout "$(left 120)" "$rt" bench --device cuda --dtype bfloat16 --model /tmp/v2lite-fp8-8 --quantization $q \
      --batches 32 --prompt-tokens 256 --output-tokens 64 --record-margins --json "$out/greedy-fp8-$q.json" > /dev/null
  done
  python3 scripts/gpu/compare_greedy.py "$out/greedy-fp8-none.json" "$out/greedy-fp8-fp8.json" | tee "$out/fp8-greedy.json"
  # Step by step on bf16's own tokens (bench --teacher-tokens): each near-tie counts once. bf16 on its own
  # tokens first, which checks that the forced decode reproduces the engine's.
  for q in none fp8; do
    log "bench --teacher-tokens greedy-fp8-none.json --quantization $q"
    timeout "$(left 120)" "$rt" bench --device cuda --dtype bfloat16 --model /tmp/v2lite-fp8-8 --quantization $q \
      --teacher-tokens "$out/greedy-fp8-none.json" --json "$out/teacher-fp8-$q.json" | grep -E "│"
  done
  rm -rf /tmp/v2lite-fp8-8
fi

if [[ $phases == *v3* ]]; then
  # DeepSeek-V3's layer shape on one GPU: 4 layers (three dense, one MoE) and 5 (a second MoE layer), random
  # bf16 weights made FP8-resident; the difference of the two is one MoE layer.
  for layers in 4 5; do
    log "bench: DeepSeek-V3 shape, $layers layers, FP8-resident, batch 1/8/32/128"
    peak "bench-v3-fp8-$layers" timeout "$(left 240)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v3 --layers $layers --quantization fp8 \
      --batches 1,8,32,128 --prompt-tokens 256 --output-tokens 16 --bandwidth-gbs 4800 --json "$out/bench-v3-fp8-$layers.json" | grep -E "│|resident|native helper"
  done
  python3 scripts/gpu/v3_projection.py "$out/bench-v3-fp8-4.json" "$out/bench-v3-fp8-5.json" | tee "$out/v3-projection.md"
fi

if [[ $phases == *structured* ]]; then
  # Constrained decoding's cost (issue #32): half of each batch under a JSON schema, in the same steps as
  # the unconstrained half, against the same batches unconstrained; each state's mask cached on the device.
  log "bench --structured-share 0.5: V2-Lite shape, batch 1 and 32"
  peak bench-structured timeout "$(left 300)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite --batches 1,32 \
    --prompt-tokens 256 --output-tokens 64 --structured-share 0.5 --bandwidth-gbs 4800 --json "$out/bench-structured.json" | grep -E "│"
fi

if [[ $phases == *lora* ]]; then
  log "bench: V2-Lite shape, bf16, 8 LoRA adapters of rank 16 on every adaptable projection, each request on its own, beside the base"
  peak bench-lora timeout "$(left 300)" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite --batches 1,8,32 \
    --prompt-tokens 256 --output-tokens 48 --bandwidth-gbs 4800 --lora-adapters 8 --lora-rank 16 --json "$out/bench-lora.json" | grep "│"
  lora=tests/fixtures/deepseek-v3-tiny-lora
  if [[ -d $lora ]]; then
    log "LoRA correctness on cuda: the base and two adapters in one concurrent wave (HF references on merged weights)"
    "$rt" serve --model tests/fixtures/deepseek-v3-tiny --device cuda --dtype float32 --host 127.0.0.1 --http-port 18100 --grpc-port 18101 \
      --lora-modules "attn-r4=$lora/attn-r4" "mlp-r8-rslora=$lora/mlp-r8-rslora" --max-loras 2 --max-lora-rank 8 > "$out/serve-lora.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do curl -fs http://127.0.0.1:18100/ready > /dev/null 2>&1 && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
    python3 - "$lora" tests/fixtures/deepseek-v3-tiny <<'PY' | tee "$out/lora-correctness.json"
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
lora, base = sys.argv[1], sys.argv[2]
refs = {"deepseek-v3-tiny": json.load(open(f"{base}/reference.json"))}
for name in ("attn-r4", "mlp-r8-rslora"):
    refs[name] = json.load(open(f"{lora}/{name}/reference.json"))
wave = [(model, p) for model, ref in refs.items() for p in ref["prompts"]]
def ask(item):
    model, p = item
    body = json.dumps({"model": model, "prompt": p["input_ids"], "max_tokens": len(p["greedy"]), "temperature": 0,
                       "logprobs": 0, "return_tokens_as_token_ids": True}).encode()
    req = urllib.request.Request("http://127.0.0.1:18100/v1/completions", body, {"Content-Type": "application/json"})
    choice = json.load(urllib.request.urlopen(req, timeout=300))["choices"][0]
    return [int(t.split(":")[1]) for t in choice["logprobs"]["tokens"]]
with ThreadPoolExecutor(len(wave)) as pool:
    got = list(pool.map(ask, wave))
rows = []
for (model, p), ids in zip(wave, got):
    # float32 on the GPU against float64: equal up to the first near-tie; generation may stop at end-of-sequence (id 1).
    tie = next((i for i, m in enumerate(p["greedy_margins"]) if m < 1e-3), len(p["greedy"]))
    if ids and ids[-1] == 1: tie = min(tie, len(ids))
    rows.append({"model": model, "prompt_tokens": len(p["input_ids"]), "equal_up_to_first_near_tie": ids[:tie] == p["greedy"][:tie], "compared": tie})
print(json.dumps({"requests": len(rows), "all_equal": all(r["equal_up_to_first_near_tie"] for r in rows), "rows": rows}))
PY
    kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
  fi
fi
log done
