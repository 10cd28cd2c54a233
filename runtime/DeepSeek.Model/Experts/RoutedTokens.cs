using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// One MoE layer's routing decision for a batch: token states <c>[T, hidden]</c>, chosen expert ids
/// <c>[T, k]</c> with their weights <c>[T, k]</c>, and how many (token, slot) pairs each expert got
/// (<c>[n_routed_experts]</c> int64, on the device: reading it on the host is a synchronisation).
/// </summary>
public sealed record RoutedTokens(int LayerIndex, Tensor Hidden, Tensor ExpertIds, Tensor Weights, Tensor TokensPerExpert);
