"""Make a tiny DeepSeek-V3 checkpoint in the published FP8 layout, with HF transformers reference outputs.

Runs where torch and transformers 5.x are installed (the GPU host). Usage:
    python3 make_fp8_fixture.py TOKENIZER_DIR OUT_ROOT
TOKENIZER_DIR holds tokenizer.json / tokenizer_config.json of a 256-token fixture (tests/fixtures/deepseek-v3-tiny).
Writes OUT_ROOT/deepseek-v3-tiny-fp8/ (one model.safetensors) and OUT_ROOT/deepseek-v3-tiny-fp8-sharded/ (two shards
and model.safetensors.index.json), both with config.json, tokenizer files and the same reference.json.

The layout is DeepSeek-V3's published one (quantization_config {quant_method fp8, fmt e4m3, weight_block_size
[128, 128]}): every linear projection of attention, dense MLP, shared and routed experts is F8_E4M3 [out, in] with
`<name>_scale_inv` F32 [ceil(out/128), ceil(in/128)]; the dequantised weight is fp8 x scale_inv of its block.
Embeddings, norms, the router (mlp.gate) and lm_head stay BF16. The dimensions are chosen so that most
projections span several blocks and end in a partial one (160 = 128 + 32, 136 = 128 + 8).

reference.json has the format of the other fixtures; its numbers are computed in float64 by HF's
DeepseekV3ForCausalLM on exactly the stored values (BF16 tensors widened, FP8 tensors dequantised per block).
"hf_fp8_load" records how far transformers' own FP8 loader (FineGrainedFP8Config) lands from that reference,
which checks that this file follows HF's conventions.
"""
import json, math, os, shutil, sys, torch
from safetensors.torch import save_file

BLOCK = 128
CONFIG = dict(vocab_size=256, hidden_size=160, intermediate_size=272, moe_intermediate_size=136,
              num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8, n_shared_experts=1,
              num_experts_per_tok=2, n_group=2, topk_group=1, routed_scaling_factor=2.5, norm_topk_prob=True,
              num_attention_heads=4, num_key_value_heads=4, q_lora_rank=144, kv_lora_rank=48,
              qk_rope_head_dim=16, qk_nope_head_dim=32, v_head_dim=32, max_position_embeddings=256,
              rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
QUANTISED_SUFFIXES = ("q_a_proj.weight", "q_b_proj.weight", "kv_a_proj_with_mqa.weight", "kv_b_proj.weight",
                      "o_proj.weight", "gate_proj.weight", "up_proj.weight", "down_proj.weight")
SEED = 23


def quantise_block_fp8(w):
    """[out, in] float -> (float8_e4m3fn [out, in], float32 scale_inv [ceil(out/128), ceil(in/128)])."""
    out_f, in_f = w.shape
    rows, cols = math.ceil(out_f / BLOCK), math.ceil(in_f / BLOCK)
    q = torch.empty(out_f, in_f, dtype=torch.float8_e4m3fn)
    scale_inv = torch.empty(rows, cols, dtype=torch.float32)
    finfo = torch.finfo(torch.float8_e4m3fn)
    for r in range(rows):
        for c in range(cols):
            blk = w[r * BLOCK:(r + 1) * BLOCK, c * BLOCK:(c + 1) * BLOCK].float()
            s = blk.abs().max().clamp(min=1e-12) / finfo.max
            q[r * BLOCK:(r + 1) * BLOCK, c * BLOCK:(c + 1) * BLOCK] = (blk / s).clamp(finfo.min, finfo.max).to(torch.float8_e4m3fn)
            scale_inv[r, c] = s
    return q, scale_inv


def dequantise_block_fp8(q, scale_inv):
    expanded = scale_inv.double().repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:q.shape[0], :q.shape[1]]
    return q.double() * expanded


def main(tokenizer_dir, out_root):
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
    torch.manual_seed(SEED)
    cfg = DeepseekV3Config(**CONFIG)
    cfg._attn_implementation = "eager"
    cfg._experts_implementation = "eager"
    model = DeepseekV3ForCausalLM(cfg).eval().float()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in n and n.endswith("weight") else torch.randn_like(p) * 0.06)
        for n, b in model.named_buffers():
            if "e_score_correction_bias" in n:
                b.copy_(torch.randn_like(b) * 0.05)

    # The checkpoint as HF saves it (per-expert keys), then quantised the way DeepSeek publishes it.
    staging = os.path.join(out_root, ".staging")
    model.save_pretrained(staging, safe_serialization=True)
    from safetensors.torch import load_file
    stored = load_file(os.path.join(staging, "model.safetensors"))
    tensors, exact = {}, {}
    for name, w in stored.items():
        if name.endswith(QUANTISED_SUFFIXES) and w.dim() == 2:
            q, s = quantise_block_fp8(w)
            tensors[name], tensors[name + "_scale_inv"] = q, s
            exact[name] = dequantise_block_fp8(q, s)
        else:
            tensors[name] = w.to(torch.bfloat16)
            exact[name] = tensors[name].double()
    config = json.load(open(os.path.join(staging, "config.json")))
    # Reference model: float64 on exactly the stored values, loaded through HF's own key mapping.
    save_file({k: v.contiguous() for k, v in exact.items()}, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
    model = DeepseekV3ForCausalLM.from_pretrained(staging, dtype=torch.float64, attn_implementation="eager",
                                                  experts_implementation="eager").eval()
    shutil.rmtree(staging)
    config["dtype"] = "bfloat16"
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                     "weight_block_size": [BLOCK, BLOCK]}
    g = torch.Generator().manual_seed(SEED + 1)
    prompts = []
    for i in range(4):
        length = int(torch.randint(3, 40 if i < 3 else 90, (1,), generator=g))
        prompts.append(torch.randint(0, cfg.vocab_size, (length,), generator=g).tolist())
    ref = {"arch": "v3", "config": CONFIG, "prompts": [], "transformers": __import__("transformers").__version__,
           "torch": torch.__version__, "weights": "fp8 e4m3, 128x128 block scales; bf16 elsewhere"}
    with torch.no_grad():
        for p in prompts:
            logits = model(torch.tensor([p])).logits[0]
            lp = torch.log_softmax(logits, -1)
            top = torch.topk(lp, 5, dim=-1)
            cur, margins = list(p), []
            for _ in range(24):
                last = model(torch.tensor([cur])).logits[0, -1]
                t2 = torch.topk(last, 2)
                margins.append(float(t2.values[0] - t2.values[1]))
                cur.append(int(t2.indices[0]))
            ref["prompts"].append({"input_ids": p, "last_logits": logits[-1].tolist(), "top5_ids": top.indices.tolist(),
                                   "top5_logprobs": top.values.tolist(), "greedy": cur[len(p):],
                                   "greedy_margins": margins, "hf_generate_cached": []})

    single = os.path.join(out_root, "deepseek-v3-tiny-fp8")
    sharded = os.path.join(out_root, "deepseek-v3-tiny-fp8-sharded")
    for d in (single, sharded):
        os.makedirs(d, exist_ok=True)
        json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=2)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tokenizer_dir, f), d)
    save_file(tensors, os.path.join(single, "model.safetensors"), metadata={"format": "pt"})
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    weight_map, total = {}, 0
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, os.path.join(sharded, file), metadata={"format": "pt"})
        for k in keys:
            weight_map[k] = file
            total += tensors[k].numel() * tensors[k].element_size()
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
              open(os.path.join(sharded, "model.safetensors.index.json"), "w"), indent=2)

    # Cross-check against transformers' own FP8 loader: its FP8 kernels (dynamic per-token-group activation
    # quantisation, so only close), and its dequantising path (which refuses partial blocks: recorded as such).
    ref["hf_fp8_load"] = {}
    for mode, kwargs in (("fp8_kernels", {}), ("dequantize", {"dequantize": True})):
        try:
            from transformers import AutoModelForCausalLM, FineGrainedFP8Config
            device = "cuda" if torch.cuda.is_available() else "cpu"
            hf = AutoModelForCausalLM.from_pretrained(single, quantization_config=FineGrainedFP8Config(**kwargs),
                                                      attn_implementation="eager", device_map=device).eval()
            worst, agree = 0.0, 0
            with torch.no_grad():
                for p in ref["prompts"]:
                    got = hf(torch.tensor([p["input_ids"]], device=device)).logits[0, -1].double().cpu()
                    want = torch.tensor(p["last_logits"], dtype=torch.float64)
                    worst = max(worst, (got - want).abs().max().item())
                    agree += int(got.argmax() == want.argmax())
            ref["hf_fp8_load"][mode] = {"device": device, "max_abs_last_logits_diff": worst,
                                        "same_argmax_prompts": agree, "prompts": len(ref["prompts"])}
        except Exception as e:  # recorded, not hidden
            ref["hf_fp8_load"][mode] = {"error": repr(e)[:300]}
    print("hf_fp8_load", ref["hf_fp8_load"])
    for d in (single, sharded):
        json.dump(ref, open(os.path.join(d, "reference.json"), "w"))
    print("wrote", single, sharded, "tensors", len(tensors), "fp8", sum(1 for t in tensors.values() if t.dtype == torch.float8_e4m3fn))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
