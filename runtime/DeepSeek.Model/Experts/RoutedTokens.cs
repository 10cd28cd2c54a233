using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Routed tokens for the experts this process holds: token states <c>[T, hidden]</c>, for each of a
/// token's k picks the slot of its expert in the held stack <c>[T, k]</c> (int64; equal to the expert
/// id where every expert is held) with its weight <c>[T, k]</c>, and the pairs per slot
/// <c>[held experts]</c> (int64, on the device: reading it on the host is a synchronisation). A pick
/// computed elsewhere has the sentinel slot <c>held experts</c> and is not counted.
/// </summary>
public sealed record RoutedTokens(int LayerIndex, Tensor Hidden, Tensor Slots, Tensor Weights, Tensor PairsPerSlot);
