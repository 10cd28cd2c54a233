"""Write a DeepSeek-V2-Lite-shaped checkpoint with random bf16 weights in the published sharded layout.

For load-time measurements (15.7 B parameters, 31 GB): config.json in the key style of the published
config, model-0000K-of-0000N.safetensors shards of about 5 GB with model.safetensors.index.json, and a
tokenizer taken from a test fixture (TOKENIZER_DIR, default tests/fixtures/deepseek-v2-lite-tiny).
With --fp8, every linear projection is stored as DeepSeek-V3 publishes its weights: F8_E4M3 with a
float32 `weight_scale_inv` per 128×128 block (edge blocks partial), and config.json carries the
`quantization_config`; embeddings, norms, the router and lm_head stay bf16.
Usage: python3 make_random_checkpoint.py OUT_DIR [--layers N] [--fp8]
"""
import argparse, json, os, shutil, torch
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=27)
ap.add_argument("--fp8", action="store_true")
ap.add_argument("--tokenizer-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "deepseek-v2-lite-tiny"))
a = ap.parse_args()

config = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048,
    "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": a.layers, "first_k_dense_replace": 1,
    "moe_layer_freq": 1, "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "topk_method": "greedy",
    "scoring_func": "softmax", "norm_topk_prob": False, "routed_scaling_factor": 1.0, "n_group": 1, "topk_group": 1,
    "num_attention_heads": 16, "num_key_value_heads": 16, "q_lora_rank": None, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "max_position_embeddings": 163840, "rms_norm_eps": 1e-6,
    "rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                                          "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
    "tie_word_embeddings": False, "bos_token_id": 100000, "eos_token_id": 100001, "torch_dtype": "bfloat16",
    "hidden_act": "silu", "attention_bias": False,
}
H, V, L = config["hidden_size"], config["vocab_size"], a.layers
heads, nope, rope, vdim, lat = 16, 128, 64, 128, 512
shapes = {"model.embed_tokens.weight": (V, H)}
for i in range(L):
    p = f"model.layers.{i}"
    shapes.update({f"{p}.input_layernorm.weight": (H,), f"{p}.post_attention_layernorm.weight": (H,),
                   f"{p}.self_attn.q_proj.weight": (heads * (nope + rope), H),
                   f"{p}.self_attn.kv_a_proj_with_mqa.weight": (lat + rope, H),
                   f"{p}.self_attn.kv_a_layernorm.weight": (lat,),
                   f"{p}.self_attn.kv_b_proj.weight": (heads * (nope + vdim), lat),
                   f"{p}.self_attn.o_proj.weight": (H, heads * vdim)})
    if i < config["first_k_dense_replace"]:
        inter = config["intermediate_size"]
        shapes.update({f"{p}.mlp.gate_proj.weight": (inter, H), f"{p}.mlp.up_proj.weight": (inter, H), f"{p}.mlp.down_proj.weight": (H, inter)})
        continue
    inter, shared = config["moe_intermediate_size"], config["moe_intermediate_size"] * config["n_shared_experts"]
    shapes[f"{p}.mlp.gate.weight"] = (config["n_routed_experts"], H)
    for e in range(config["n_routed_experts"]):
        shapes.update({f"{p}.mlp.experts.{e}.gate_proj.weight": (inter, H), f"{p}.mlp.experts.{e}.up_proj.weight": (inter, H),
                       f"{p}.mlp.experts.{e}.down_proj.weight": (H, inter)})
    shapes.update({f"{p}.mlp.shared_experts.gate_proj.weight": (shared, H), f"{p}.mlp.shared_experts.up_proj.weight": (shared, H),
                   f"{p}.mlp.shared_experts.down_proj.weight": (H, shared)})
shapes["model.norm.weight"] = (H,)
QUANTISED = ("q_proj.weight", "kv_a_proj_with_mqa.weight", "kv_b_proj.weight", "o_proj.weight", "gate_proj.weight", "up_proj.weight", "down_proj.weight")
if a.fp8:
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}


def fp8_blocks(w):
    """[out, in] bf16 -> (float8_e4m3fn, float32 scale_inv [ceil(out/128), ceil(in/128)])."""
    out_f, in_f = w.shape
    rows, cols = -(-out_f // 128), -(-in_f // 128)
    padded = torch.zeros(rows * 128, cols * 128, dtype=torch.float32, device=w.device)
    padded[:out_f, :in_f] = w.float()
    blocks = padded.view(rows, 128, cols, 128)
    scale = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12) / torch.finfo(torch.float8_e4m3fn).max
    q = (blocks / scale[:, None, :, None]).view(rows * 128, cols * 128)[:out_f, :in_f].to(torch.float8_e4m3fn)
    return q, scale
shapes["lm_head.weight"] = (V, H)

limit = 5 * 2**30
groups, current, size = [], [], 0
for name, shape in shapes.items():
    n = (1 if a.fp8 and name.endswith(QUANTISED) else 2) * torch.Size(shape).numel()
    if current and size + n > limit:
        groups.append(current); current, size = [], 0
    current.append(name); size += n
groups.append(current)

os.makedirs(a.out, exist_ok=True)
device = "cuda" if torch.cuda.is_available() else "cpu"
gen = torch.Generator(device=device).manual_seed(0)
weight_map, total = {}, 0
for k, names in enumerate(groups, 1):
    file = f"model-{k:05d}-of-{len(groups):05d}.safetensors"
    tensors = {}
    for name in names:
        shape = shapes[name]
        t = torch.ones(shape, dtype=torch.bfloat16, device=device) if len(shape) == 1 else \
            torch.empty(shape, dtype=torch.bfloat16, device=device).normal_(0, 0.02, generator=gen)
        if a.fp8 and name.endswith(QUANTISED):
            q, scale = fp8_blocks(t)
            tensors[name], tensors[name + "_scale_inv"] = q.cpu(), scale.cpu()
            weight_map[name + "_scale_inv"] = file
            total += q.numel() + scale.numel() * 4
        else:
            tensors[name] = t.cpu()
            total += t.numel() * 2
        weight_map[name] = file
    save_file(tensors, os.path.join(a.out, file), metadata={"format": "pt"})
json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, open(os.path.join(a.out, "model.safetensors.index.json"), "w"))
json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=2)
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(a.tokenizer_dir, f), a.out)
print(json.dumps({"checkpoint": a.out, "shards": len(groups), "gb": round(total / 1e9, 1), "tensors": len(shapes)}))
