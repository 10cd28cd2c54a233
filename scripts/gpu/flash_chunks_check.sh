#!/usr/bin/env bash
# Usage (on a GPU host, from the repository root): BUNDLE=path/to/deepseek-runtime-linux-x64.tar.xz OUT=dir scripts/gpu/flash_chunks_check.sh
# Prefill attention through FlashAttention-2's packed (varlen) form, the default with the native helper in
# bf16, against SDPA over the padded view with its mask (DEEPSEEK_FLASH_VARLEN=0, the path before it):
#  (a) correctness: random V2-Lite-shaped bf16 weights (bench --shape, 8 layers, one seed), a 32K prompt in chunks
#      of 8,192 and three 12,000-token prompts sharing steps (chunks after cached context beside fresh prompts),
#      flash against SDPA and flash in one step, greedy tokens and their logit margins (compare_greedy.py);
#      and the float32 fixtures' reference tokens (float32 never takes flash; bench-h200.sh's correctness phase);
#  (b) speed: one 32,768- and one 131,072-token prompt in chunks of 8,192, flash and SDPA, and the 32K prompt in
#      one step both ways; prefill tok/s and peak device memory (nvidia-smi every 100 ms, the whole process).
# Results: $OUT/*.json, *.log, *.mem and a table at the end ($OUT/table.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"; out="$(cd "$out" && pwd)"
bundle="${BUNDLE:-$repo/deepseek-runtime-linux-x64.tar.xz}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
exec > >(tee -a "$out/run.log") 2>&1
t0=$(date +%s)
log() { echo "== $* (t+$(( $(date +%s) - t0 ))s)"; }

# Peak device memory of one command (its whole footprint: weights, KV cache, the caching allocator's reserve).
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
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

log "unpack the bundle, build the native helper (ABI 7: dsn_flash_attention_varlen)"
rm -rf /tmp/rt && mkdir -p /tmp/rt && tar -C /tmp/rt -xJf "$bundle" || exit 1
rt=/tmp/rt/deepseek-runtime/deepseek-runtime
timeout 300 bash scripts/build-native.sh "$out/native" > "$out/build-native.log" 2>&1
rc=$?; grep -E "error|dsn_" "$out/build-native.log" | grep -v -i "interference" | tail -20
[[ $rc == 0 ]] || { echo "build-native failed (rc $rc); see $out/build-native.log"; exit 1; }
nm -D --defined-only "$out/native/libdeepseek_native.so" | grep -q " dsn_flash_attention_varlen$" \
  || { echo "the helper does not export dsn_flash_attention_varlen"; exit 1; }
cp "$out/native/libdeepseek_native.so" /tmp/rt/deepseek-runtime/ || exit 1
export DEEPSEEK_LIBTORCH_DIR="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

# One bench run: NAME FLASH(1|0) TIMEOUT ARGS...; its output in NAME.log; shown: the runner's line on which
# path prefill attention took (where the bench logs it), the table rows, the peak memory and any error.
bench() {
  local name=$1 flash=$2 limit=$3; shift 3
  log "bench $name (DEEPSEEK_FLASH_VARLEN=$flash): $*"
  peak "$name" env DEEPSEEK_FLASH_VARLEN=$flash timeout "$limit" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite \
    --bandwidth-gbs 4800 --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1
  grep -o "prefill attention[^;.]*" "$out/$name.log" | head -1
  grep -E "│|peak MiB|rror|xception" "$out/$name.log" | head -20
}

# ---- (a) correctness -----------------------------------------------------------------------------------
log "float32 fixtures against their reference tokens (no flash in float32)"
BUNDLE="$bundle" OUT="$out/fixtures" NATIVE_SO="$out/native/libdeepseek_native.so" PHASES=correctness bash scripts/gpu/bench-h200.sh > /dev/null 2>&1
cat "$out"/fixtures/correctness-*.json; echo

for flash in 1 0; do
  bench "check-32k-chunks-$flash" $flash 300 --layers 8 --batches 1 --prompt-tokens 32768 --output-tokens 32 --max-batch-tokens 8192 --record-margins
  bench "check-3x12k-$flash" $flash 300 --layers 8 --batches 3 --prompt-tokens 12000 --output-tokens 32 --max-batch-tokens 8192 --record-margins
done
bench check-32k-one-step-1 1 300 --layers 8 --batches 1 --prompt-tokens 32768 --output-tokens 32 --max-batch-tokens 32768 --record-margins
log "greedy tokens: flash against SDPA (chunks), flash in chunks against flash in one step"
python3 scripts/gpu/compare_greedy.py "$out/check-32k-chunks-0.json" "$out/check-32k-chunks-1.json" | tee "$out/compare-32k-flash-vs-sdpa.json"
python3 scripts/gpu/compare_greedy.py "$out/check-3x12k-0.json" "$out/check-3x12k-1.json" | tee "$out/compare-3x12k-flash-vs-sdpa.json"
python3 scripts/gpu/compare_greedy.py "$out/check-32k-one-step-1.json" "$out/check-32k-chunks-1.json" | tee "$out/compare-32k-chunks-vs-one-step.json"

# ---- (b) speed -------------------------------------------------------------------------------------------
for prompt in 32768 131072; do
  for flash in 1 0; do
    bench "speed-$prompt-chunks-$flash" $flash 400 --batches 1 --prompt-tokens $prompt --output-tokens 8 --max-batch-tokens 8192
  done
done
for flash in 1 0; do
  bench "speed-32768-one-step-$flash" $flash 300 --batches 1 --prompt-tokens 32768 --output-tokens 8 --max-batch-tokens 32768
done

log table
python3 - "$out" <<'PY' | tee "$out/table.md"
import glob, json, os, sys
out = sys.argv[1]
def row(name):
    try: r = json.load(open(f"{out}/{name}.json"))["rows"][0]
    except Exception: return None, None
    mem = [int(l) for l in open(f"{out}/{name}.mem") if l.strip().isdigit()] if os.path.exists(f"{out}/{name}.mem") else []
    return r["prefill_tokens_per_second"], (max(mem) / 1024 if mem else None)
# The peer's whole-prompt prefill (HF transformers, H200, docs/benchmarks.md): compare on an H200 only.
peer = {32768: 39892, 131072: 19663}
print("| row | flash varlen tok/s | SDPA (mask) tok/s | flash / SDPA | flash / peer (H200) | peak GiB flash / SDPA |")
print("| --- | --- | --- | --- | --- | --- |")
for label, a, b, p in [("32,768-token prompt, chunks of 8,192", "speed-32768-chunks-1", "speed-32768-chunks-0", 32768),
                       ("131,072-token prompt, chunks of 8,192", "speed-131072-chunks-1", "speed-131072-chunks-0", 131072),
                       ("32,768-token prompt in one step", "speed-32768-one-step-1", "speed-32768-one-step-0", 32768)]:
    (fa, ma), (fb, mb) = row(a), row(b)
    f = lambda x: "failed" if x is None else f"{x:,.0f}"
    g = lambda x: "?" if x is None else f"{x:.1f}"
    ratio = f"{fa / fb:.2f}×" if fa and fb else "?"
    vs_peer = f"{fa / peer[p]:.2f}×" if fa else "?"
    print(f"| {label} | {f(fa)} | {f(fb)} | {ratio} | {vs_peer} | {g(ma)} / {g(mb)} |")
print()
for name in ["compare-32k-flash-vs-sdpa", "compare-3x12k-flash-vs-sdpa", "compare-32k-chunks-vs-one-step"]:
    try: rows = json.load(open(f"{out}/{name}.json"))
    except Exception: print(f"{name}: missing"); continue
    for r in rows:
        print(f"{name}: {r['requests_equal_throughout']}/{r['requests']} requests equal throughout, "
              f"{r['steps_equal_before_parting']}/{r['steps']} steps before parting; partings {r['parted']}")
for path in sorted(glob.glob(f"{out}/fixtures/correctness-*.json")):
    try: c = json.load(open(path))
    except Exception: print(f"{path}: unreadable"); continue
    print(f"float32 {c['fixture']}: {sum(r['equal'] for r in c['rows'])}/{len(c['rows'])} prompts equal to the reference, "
          f"{sum(r['equal_up_to_first_near_tie'] for r in c['rows'])}/{len(c['rows'])} up to the first near tie")
PY
rm -f "$out"/native/*.o
log done
