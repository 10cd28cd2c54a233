using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// One Compute call answered: a peer's routed tokens of one MoE layer through the experts this rank
/// holds, checked first (the placement version the peer routed by, the layer, the shapes and the
/// expert ids), since a peer's bytes are input. Runs on the thread that owns <c>model</c>: a member's
/// tensor thread, or with data-parallel attention the rank's engine thread.
/// </summary>
public static class PeerCompute
{
    /// <exception cref="InvalidOperationException">The peer routed by a placement this rank holds no experts of.</exception>
    /// <exception cref="ArgumentException">Not a MoE layer, or malformed tensors.</exception>
    /// <exception cref="FormatException">Tensor bytes that do not decode.</exception>
    public static ComputeReply Answer(DeepSeekForCausalLM model, ExpertGroup group, ComputeRequest request)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(request);
        var rank = group.Settings.Rank;
        var experts = model.RoutedExperts.FirstOrDefault(e => e.LayerIndex == request.Layer)
            ?? throw new ArgumentException($"Layer {request.Layer} is not a MoE layer of this model.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = model.Device;
        var hidden = WireTensors.Decode(request.Hidden, device);
        var ids = WireTensors.Decode(request.ExpertIds, device);
        var weights = WireTensors.Decode(request.Weights, device);
        if (hidden.shape.Length != 2 || hidden.shape[1] != experts.HiddenSize)
            throw new ArgumentException($"Hidden states must be [n, {experts.HiddenSize}], got [{string.Join(", ", hidden.shape)}].");
        if (ids.dtype != ScalarType.Int64 || ids.shape.Length != 2 || ids.shape[0] != hidden.shape[0] || !weights.shape.SequenceEqual(ids.shape))
            throw new ArgumentException($"Expert ids (int64) and weights must both be [{hidden.shape[0]}, k], got [{string.Join(", ", ids.shape)}] {ids.dtype} and [{string.Join(", ", weights.shape)}].");
        if (ids.numel() > 0 && (ids.max().item<long>() >= experts.ExpertCount || ids.min().item<long>() < -1))
            throw new ArgumentException($"Expert ids must be in [-1, {experts.ExpertCount}).");
        // By the placement the peer routed by: the one in force, or the one held beside it while ranks switch.
        var output = ExpertParallelism.ComputeHeld(experts, new ExpertBatch(rank, hidden.to(model.DType), ids, weights.to(ScalarType.Float32)), request.PlacementVersion);
        return new ComputeReply { Output = WireTensors.Encode(output) };
    }
}
