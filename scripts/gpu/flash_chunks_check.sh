#!/usr/bin/env bash
# Usage (on a GPU host, from the repository root):
#   BUNDLE=path/to/deepseek-runtime-linux-x64.tar.xz OUT=dir [PHASES="fixtures check speed32 speed128"] scripts/gpu/flash_chunks_check.sh
# Prefill attention over packed sequences (varlen) against SDPA over the padded view with its mask, the path
# before it. Three variants, by DEEPSEEK_FLASH_VARLEN: 1 FlashAttention-2 with v padded to q·k's
# head dim, efficient (the memory-efficient kernel's varlen form, v unpadded), 0 (SDPA with the mask, the default).
#  fixtures: the float32 fixtures' reference tokens (float32 never takes a varlen kernel; bench-h200.sh's phase);
#  check:    random V2-Lite-shaped bf16 weights (bench --shape, 8 layers, one seed): a 32K prompt in chunks of 8,192
#            and three 12,000-token prompts sharing steps (chunks after cached context beside fresh prompts), each
#            variant, and flash in one step; greedy tokens and logit margins compared (compare_greedy.py);
#  speed32:  one 32,768-token prompt in chunks of 8,192 and in one step, each variant (full 27 layers);
#  speed128: one 131,072-token prompt in chunks of 8,192, each variant; prefill tok/s and peak device memory
#            (nvidia-smi every 100 ms, the whole process) for both.
# Each phase fits in 10 minutes; the helper built by an earlier call is reused from $OUT/native (REBUILD=1 rebuilds).
# Results: $OUT/*.json, *.log, *.mem and a table at the end ($OUT/table.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"
out="${OUT:-/tmp/out}"; mkdir -p "$out"; out="$(cd "$out" && pwd)"
bundle="${BUNDLE:-$repo/deepseek-runtime-linux-x64.tar.xz}"
phases="${PHASES:-fixtures check speed32 speed128}"
# VARIANTS narrows the kernels compared (default all three), for a short call.
variants="${VARIANTS:-flash efficient sdpa}"
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

log "machine; phases: $phases"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

log "unpack the bundle; the native helper (ABI 7: dsn_flash_attention_varlen, dsn_efficient_attention_varlen)"
rm -rf /tmp/rt && mkdir -p /tmp/rt && tar -C /tmp/rt -xJf "$bundle" || exit 1
rt=/tmp/rt/deepseek-runtime/deepseek-runtime
so="$out/native/libdeepseek_native.so"
if [[ ! -f $so || -n ${REBUILD:-} ]]; then
  timeout 300 bash scripts/build-native.sh "$out/native" > "$out/build-native.log" 2>&1
  rc=$?; grep -E "error|dsn_" "$out/build-native.log" | grep -v -i "interference" | tail -20
  rm -f "$out"/native/*.o
  [[ $rc == 0 ]] || { echo "build-native failed (rc $rc); see $out/build-native.log"; exit 1; }
fi
# The symbol table read once: `nm | grep -q` under pipefail fails when grep quits before nm has written all (SIGPIPE).
exported="$(nm -D --defined-only "$so")"
for symbol in dsn_flash_attention_varlen dsn_efficient_attention_varlen; do
  grep -q " $symbol$" <<< "$exported" || { echo "the helper does not export $symbol"; exit 1; }
done
cp "$so" /tmp/rt/deepseek-runtime/ || exit 1
export DEEPSEEK_LIBTORCH_DIR="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

# One bench run: NAME VARIANT(flash|efficient|sdpa) TIMEOUT ARGS...; its output in NAME.log; shown: the runner's
# line on which kernel prefill attention took (where the bench logs it), the table rows, the peak memory, any error.
bench() {
  local name=$1 variant=$2 limit=$3; shift 3
  local setting; case $variant in flash) setting=1 ;; efficient) setting=efficient ;; *) setting=0 ;; esac
  log "bench $name (DEEPSEEK_FLASH_VARLEN=$setting): $*"
  peak "$name" env DEEPSEEK_FLASH_VARLEN=$setting timeout "$limit" "$rt" bench --device cuda --dtype bfloat16 --shape deepseek-v2-lite \
    --bandwidth-gbs 4800 --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1
  grep -o "prefill attention[^;]*" "$out/$name.log" | head -1
  grep -E "│|peak MiB|rror|xception" "$out/$name.log" | head -20
}

if [[ $phases == *fixtures* ]]; then
  log "float32 fixtures against their reference tokens"
  BUNDLE="$bundle" OUT="$out/fixtures" NATIVE_SO="$so" PHASES=correctness bash scripts/gpu/bench-h200.sh > /dev/null 2>&1
  cat "$out"/fixtures/correctness-*.json; echo
fi

if [[ $phases == *check* ]]; then
  for variant in $variants; do
    bench "check-32k-chunks-$variant" $variant 150 --layers 8 --batches 1 --prompt-tokens 32768 --output-tokens 32 --max-batch-tokens 8192 --record-margins
    bench "check-3x12k-$variant" $variant 150 --layers 8 --batches 3 --prompt-tokens 12000 --output-tokens 32 --max-batch-tokens 8192 --record-margins
  done
  bench check-32k-one-step-flash flash 150 --layers 8 --batches 1 --prompt-tokens 32768 --output-tokens 32 --max-batch-tokens 32768 --record-margins
  log "greedy tokens: each varlen kernel against SDPA; flash in chunks against flash in one step"
  for variant in $variants; do
    [[ $variant == sdpa ]] && continue
    for case in 32k-chunks 3x12k; do
      python3 scripts/gpu/compare_greedy.py "$out/check-$case-sdpa.json" "$out/check-$case-$variant.json" > "$out/compare-$case-$variant-vs-sdpa.json"
    done
  done
  python3 scripts/gpu/compare_greedy.py "$out/check-32k-one-step-flash.json" "$out/check-32k-chunks-flash.json" > "$out/compare-32k-chunks-vs-one-step-flash.json"
fi

if [[ $phases == *speed32* ]]; then
  for variant in $variants; do
    bench "speed-32768-chunks-$variant" $variant 150 --batches 1 --prompt-tokens 32768 --output-tokens 8 --max-batch-tokens 8192
    bench "speed-32768-one-step-$variant" $variant 150 --batches 1 --prompt-tokens 32768 --output-tokens 8 --max-batch-tokens 32768
  done
fi

if [[ $phases == *speed128* ]]; then
  for variant in $variants; do
    bench "speed-131072-chunks-$variant" $variant 190 --batches 1 --prompt-tokens 131072 --output-tokens 8 --max-batch-tokens 8192
  done
fi

log table
python3 - "$out" <<'PY' | tee "$out/table.md"
import glob, json, os, sys
out = sys.argv[1]
def row(name):
    try: r = json.load(open(f"{out}/{name}.json"))["rows"][0]
    except Exception: return None, None
    mem = [int(l) for l in open(f"{out}/{name}.mem") if l.strip().isdigit()] if os.path.exists(f"{out}/{name}.mem") else []
    return r["prefill_tokens_per_second"], (max(mem) / 1024 if mem else None)
# The peer's whole-prompt prefill (HF transformers on an H200, docs/benchmarks.md): meaningful on an H200 only.
peer = {32768: 39892, 131072: 19663}
variants = ["flash", "efficient", "sdpa"]
f = lambda x: "–" if x is None else f"{x:,.0f}"
g = lambda x: "?" if x is None else f"{x:.1f}"
print("| row | " + " | ".join(f"{v} tok/s" for v in variants) + " | best varlen / SDPA | best varlen / peer (H200) | peak GiB " + " / ".join(variants) + " |")
print("| --- |" + " --- |" * (len(variants) + 3))
for label, stem, p in [("32,768-token prompt, chunks of 8,192", "speed-32768-chunks", 32768),
                       ("131,072-token prompt, chunks of 8,192", "speed-131072-chunks", 131072),
                       ("32,768-token prompt in one step", "speed-32768-one-step", 32768)]:
    runs = {v: row(f"{stem}-{v}") for v in variants}
    best = max((runs[v][0] for v in ("flash", "efficient") if runs[v][0]), default=None)
    sdpa = runs["sdpa"][0]
    ratio = f"{best / sdpa:.2f}×" if best and sdpa else "?"
    vs_peer = f"{best / peer[p]:.2f}×" if best else "?"
    print(f"| {label} | " + " | ".join(f(runs[v][0]) for v in variants) + f" | {ratio} | {vs_peer} | " + " / ".join(g(runs[v][1]) for v in variants) + " |")
print()
for path in sorted(glob.glob(f"{out}/compare-*.json")):
    name = os.path.basename(path)[:-5]
    try: rows = json.load(open(path))
    except Exception: print(f"{name}: unreadable (a run failed?)"); continue
    for r in rows:
        print(f"{name}: {r['requests_equal_throughout']}/{r['requests']} requests equal throughout, "
              f"{r['steps_equal_before_parting']}/{r['steps']} steps before parting; partings {r['parted']}")
for path in sorted(glob.glob(f"{out}/fixtures/correctness-*.json")):
    try: c = json.load(open(path))
    except Exception: print(f"{path}: unreadable"); continue
    print(f"float32 {c['fixture']}: {sum(r['equal'] for r in c['rows'])}/{len(c['rows'])} prompts equal to the reference, "
          f"{sum(r['equal_up_to_first_near_tie'] for r in c['rows'])}/{len(c['rows'])} up to the first near tie")
PY
log done
