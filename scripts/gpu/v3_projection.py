"""A projection, not a measurement: DeepSeek-V3 decode throughput of one 8-GPU node at expert-parallel size 8
with data-parallel attention, from `bench` runs of V3's real layer shape on one GPU (docs/benchmarks.md).

Inputs: two `bench --shape deepseek-v3 --quantization fp8 --json` runs of 4 and 5 layers (V3's first three
layers are dense, so the fifth is a second MoE layer: their difference is one MoE layer, all 256 experts
on one GPU). Model of a step on one rank of eight, each running attention for its own batch B:
  - an MoE layer's non-expert time (attention, shared expert, router) at batch B: measured on one GPU;
  - its routed experts: the node's 8·B tokens pick 8 experts each, 8·B picks land on each rank's 32 experts;
    time = FP8 bytes of the experts those picks touch / the bandwidth the one-GPU run achieved on its experts;
  - two all-to-alls per layer (dispatch, combine) of bf16 hidden vectors to the 7 other ranks, at an
    all-to-all bus bandwidth and a fixed latency per collective (assumptions, printed);
  - the three dense layers, embedding, LM head and sampling: the 4-layer run minus one MoE layer.
Usage: v3_projection.py BENCH4.json BENCH5.json [--a2a-gbs 350] [--a2a-latency-us 20] [--hbm-gbs 4800]"""
import argparse, json

ap = argparse.ArgumentParser()
ap.add_argument("four"); ap.add_argument("five")
ap.add_argument("--a2a-gbs", type=float, default=350.0, help="NCCL all-to-all bus bandwidth per GPU over NVLink (H100/H200 NVLink 4: 450 GB/s a direction)")
ap.add_argument("--a2a-latency-us", type=float, default=20.0)
a = ap.parse_args()

hidden, inter, experts, active, ranks, moe_layers = 7168, 2048, 256, 8, 8, 58
expert_bytes = 3 * inter * hidden * (1 + 4 / (128 * 128))  # FP8 gate, up, down with their block scales
four, five = (json.load(open(p)) for p in (a.four, a.five))
layer_bytes = five["resident_weight_bytes"] - four["resident_weight_bytes"]

def touched(picks, pool):  # expected distinct experts hit by `picks` uniform picks among `pool`
    return pool * (1 - (1 - 1 / pool) ** picks)

print(f"one MoE layer of V3 held FP8: {layer_bytes / 2**30:.2f} GiB resident (measured)")
print(f"assumptions: all-to-all {a.a2a_gbs:.0f} GB/s bus bandwidth, {a.a2a_latency_us:.0f} µs a collective; uniform routing")
print("| batch a rank | MoE layer on 1 GPU ms | its experts' share ms | rest of the step ms | experts a rank ms | all-to-all ms | step ms (61 layers) | node decode tok/s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for r4, r5 in zip(four["rows"], five["rows"]):
    b = r4["batch"]
    layer_ms = r5["decode_ms_per_step"] - r4["decode_ms_per_step"]
    one_gpu_expert_bytes = touched(b * active, experts) * expert_bytes
    # The experts' share of the one-GPU layer: their bytes at the HBM rate the whole layer reached on its own
    # bytes (an upper bound on their share, so the non-expert rest is a lower bound).
    layer_gbs = (one_gpu_expert_bytes + (layer_bytes - experts * expert_bytes)) / (layer_ms * 1e6)
    experts_ms = one_gpu_expert_bytes / (layer_gbs * 1e6)
    non_expert_ms = layer_ms - experts_ms
    rank_expert_ms = touched(ranks * b * active / ranks, experts // ranks) * expert_bytes / (layer_gbs * 1e6)
    a2a_bytes = 2 * b * active * (ranks - 1) / ranks * hidden * 2
    a2a_ms = 2 * a.a2a_latency_us / 1e3 + a2a_bytes / (a.a2a_gbs * 1e6)
    rest_ms = r4["decode_ms_per_step"] - layer_ms
    step_ms = rest_ms + moe_layers * (non_expert_ms + rank_expert_ms + a2a_ms)
    print(f"| {b} | {layer_ms:.3f} | {experts_ms:.3f} | {rest_ms:.3f} | {rank_expert_ms:.3f} | {a2a_ms:.3f} | {step_ms:.1f} | {ranks * b * 1000 / step_ms:,.0f} |")
