using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// Attention over sequences packed without padding (<see cref="VarlenAttention"/>): <paramref name="query"/>
/// <c>[total queries, H, D]</c>, <paramref name="keys"/> and <paramref name="values"/> <c>[total context, H, D]</c>,
/// causal aligned bottom-right (<see cref="VarlenLayout.Sees"/>), scores scaled by <paramref name="scale"/>;
/// returns <c>[total queries, H, D]</c>. On CUDA the native helper's FlashAttention-2
/// (<see cref="Native.NativeHelper.FlashAttentionVarlen"/>); tests give a CPU reference.
/// </summary>
internal delegate Tensor VarlenAttentionKernel(Tensor query, Tensor keys, Tensor values, VarlenAttention varlen, double scale);
