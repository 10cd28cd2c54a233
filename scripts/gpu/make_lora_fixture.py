"""Make LoRA adapter fixtures for the tiny reference checkpoints, with HF transformers references on merged weights.

Runs where torch, safetensors and transformers 5.x are installed (a GPU host; no peft needed: the PEFT layout is
written here). Usage, from the repository root:
    python3 scripts/gpu/make_lora_fixture.py tests/fixtures
For each base fixture below it writes tests/fixtures/<base>-lora/<adapter>/ holding
  adapter_config.json         PEFT's LoraConfig fields (peft_type LORA, r, lora_alpha, use_rslora, target_modules, ...)
  adapter_model.safetensors   base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r], float32
  reference.json              the base fixture's reference.json layout (prompts with input_ids, last_logits, top5_ids,
                              top5_logprobs, greedy, greedy_margins) computed by HF's DeepseekV{2,3}ForCausalLM in float64
                              on merged weights W + scale * B @ A, scale = lora_alpha / r (lora_alpha / sqrt(r) with rsLoRA),
                              on the base fixture's own reference prompts.
A and B are random (B is not zero as PEFT initialises it, so the adapters change the tokens), seeded, so a rerun
writes the same files. Modules are those the HF model has as nn.Linear (its routed experts are fused parameters,
which PEFT's target_modules cannot name); kv_b_proj is left out (the runtime refuses it: absorbed attention).
"""
import json, math, os, sys, torch
from safetensors.torch import save_file

ADAPTERS = {
    "deepseek-v3-tiny": [
        # attention only, rank 4, alpha 8 (scale 2)
        dict(name="attn-r4", seed=101, r=4, lora_alpha=8, use_rslora=False,
             target_modules=["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "o_proj"]),
        # output projection plus the dense MLP and the shared experts, rank 8, alpha 16, rsLoRA (scale 16/sqrt(8))
        dict(name="mlp-r8-rslora", seed=202, r=8, lora_alpha=16, use_rslora=True,
             target_modules=["o_proj", "gate_proj", "up_proj", "down_proj"]),
    ],
    "deepseek-v2-lite-tiny": [
        # no q LoRA in V2-Lite: q_proj; rank 8, alpha 4 (scale 0.5)
        dict(name="q-kv-down-r8", seed=303, r=8, lora_alpha=4, use_rslora=False,
             target_modules=["q_proj", "kv_a_proj_with_mqa", "down_proj"]),
    ],
}


def matches(module, targets):
    return any(module == t or module.endswith("." + t) for t in targets)


def make(fixtures, base, spec):
    from transformers import DeepseekV2ForCausalLM, DeepseekV3ForCausalLM
    base_dir = os.path.join(fixtures, base)
    out = os.path.join(fixtures, base + "-lora", spec["name"])
    os.makedirs(out, exist_ok=True)
    arch = json.load(open(os.path.join(base_dir, "config.json")))["model_type"]
    cls = DeepseekV3ForCausalLM if arch == "deepseek_v3" else DeepseekV2ForCausalLM
    model = cls.from_pretrained(base_dir, dtype=torch.float64, attn_implementation="eager",
                                experts_implementation="eager").eval()
    r, alpha = spec["r"], spec["lora_alpha"]
    scale = alpha / math.sqrt(r) if spec["use_rslora"] else alpha / r
    g = torch.Generator().manual_seed(spec["seed"])
    tensors = {}
    linears = [(n, m) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and n != "lm_head" and ".mlp.experts." not in n and matches(n, spec["target_modules"])]
    assert linears, spec
    with torch.no_grad():
        for name, module in sorted(linears):
            out_f, in_f = module.weight.shape
            a = (torch.randn(r, in_f, generator=g, dtype=torch.float64) * 0.1).float()
            b = (torch.randn(out_f, r, generator=g, dtype=torch.float64) * 0.1).float()
            tensors[f"base_model.model.{name}.lora_A.weight"] = a.contiguous()
            tensors[f"base_model.model.{name}.lora_B.weight"] = b.contiguous()
            module.weight += scale * (b.double() @ a.double())  # the merged weights the reference runs on
    save_file(tensors, os.path.join(out, "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base, "r": r,
              "lora_alpha": alpha, "lora_dropout": 0.0, "use_rslora": spec["use_rslora"], "use_dora": False,
              "bias": "none", "fan_in_fan_out": False, "target_modules": spec["target_modules"],
              "modules_to_save": None, "rank_pattern": {}, "alpha_pattern": {}, "inference_mode": True}
    json.dump(config, open(os.path.join(out, "adapter_config.json"), "w"), indent=2)

    base_ref = json.load(open(os.path.join(base_dir, "reference.json")))
    ref = {"arch": base_ref["arch"], "base": base, "adapter": spec["name"], "scale": scale, "prompts": [],
           "transformers": __import__("transformers").__version__, "torch": torch.__version__}
    with torch.no_grad():
        for p in (q["input_ids"] for q in base_ref["prompts"]):
            logits = model(torch.tensor([p])).logits[0]
            top = torch.topk(torch.log_softmax(logits, -1), 5, dim=-1)
            cur, margins = list(p), []
            for _ in range(24):
                last = model(torch.tensor([cur])).logits[0, -1]
                t2 = torch.topk(last, 2)
                margins.append(float(t2.values[0] - t2.values[1]))
                cur.append(int(t2.indices[0]))
            ref["prompts"].append({"input_ids": p, "last_logits": logits[-1].tolist(), "top5_ids": top.indices.tolist(),
                                   "top5_logprobs": top.values.tolist(), "greedy": cur[len(p):], "greedy_margins": margins})
            base_greedy = next(q["greedy"] for q in base_ref["prompts"] if q["input_ids"] == p)
            print(base, spec["name"], "prompt", len(p), "tokens; differs from the base at",
                  sum(1 for x, y in zip(ref["prompts"][-1]["greedy"], base_greedy) if x != y), "of 24 greedy steps")
    json.dump(ref, open(os.path.join(out, "reference.json"), "w"))
    print("wrote", out, len(tensors), "tensors, scale", scale)


def main(fixtures):
    for base, specs in ADAPTERS.items():
        for spec in specs:
            make(fixtures, base, spec)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
