"""Make a small random DeepSeek-V3 checkpoint (bf16) whose projections all take int4 with group 128.

For checking `--quantization int4` on CUDA (LibTorch's int4 kernels through the native helper) against the
CPU reference path on the same weights: the test fixtures are narrower than 128, so int4 with the CLI's
group size leaves every one of their layers in bf16. Runs where torch and transformers 5.x are installed
(the GPU host). Usage:
    python3 make_int4_check_model.py OUT_DIR
Every quantised width (hidden 256, q_lora 256, heads x v_head 256, intermediate 512, moe_intermediate 256)
is a multiple of 128 and every output width a multiple of 8, as the kernel needs; kv_b_proj, lm_head,
embeddings, norms and the router stay bf16 in the runtime anyway.
"""
import os, sys, torch

CONFIG = dict(vocab_size=256, hidden_size=256, intermediate_size=512, moe_intermediate_size=256,
              num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8, n_shared_experts=1,
              num_experts_per_tok=2, n_group=2, topk_group=1, routed_scaling_factor=2.5, norm_topk_prob=True,
              num_attention_heads=2, num_key_value_heads=2, q_lora_rank=256, kv_lora_rank=128,
              qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128, max_position_embeddings=256,
              rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
SEED = 29


def main(out_dir):
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
    torch.manual_seed(SEED)
    model = DeepseekV3ForCausalLM(DeepseekV3Config(**CONFIG)).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in n and n.endswith("weight") else torch.randn_like(p) * 0.06)
        for n, b in model.named_buffers():
            if "e_score_correction_bias" in n:
                b.copy_(torch.randn_like(b) * 0.05)
    model.to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)
    print("wrote", out_dir, {k: v for k, v in CONFIG.items() if "size" in k or "rank" in k})


if __name__ == "__main__":
    main(sys.argv[1])
