using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// One MoE layer's routing decision for a batch: token states <c>[T, hidden]</c>, chosen expert ids
/// <c>[T, k]</c> with their weights <c>[T, k]</c>, and how many tokens each expert got (on the host).
/// </summary>
public sealed record RoutedTokens(int LayerIndex, Tensor Hidden, Tensor ExpertIds, Tensor Weights, long[] TokensPerExpert);
