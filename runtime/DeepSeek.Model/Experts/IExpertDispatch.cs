using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Where a layer's routed picks go once the layer no longer holds every expert. A pass installs one in
/// <see cref="RoutedExperts"/> before the model is materialised (<see cref="RoutedExperts.HoldOnly"/>;
/// expert parallelism does, with its sharded module) and from then on the layer's forward is the
/// dispatch's: it has the layer compute the picks of the experts held here
/// (<see cref="RoutedExperts.ComputeSlots"/>) and the others computed elsewhere. So the experts, like
/// the model code, know nothing of ranks. The layer owns it and disposes it with itself.
/// </summary>
internal interface IExpertDispatch : IDisposable
{
    /// <summary>
    /// <c>Σ_k weights[t,k] · expert_{ids[t,k]}(hidden[t])</c> for every token, wherever the experts live.
    /// </summary>
    /// <param name="hidden"><c>[T, hidden]</c>.</param>
    /// <param name="ids">Global expert ids <c>[T, k]</c>.</param>
    /// <param name="weights"><c>[T, k]</c>, in the dtype of <paramref name="hidden"/>.</param>
    /// <param name="tokensPerExpert">Picks per expert <c>[n_routed_experts]</c> on the device.</param>
    Tensor Forward(Tensor hidden, Tensor ids, Tensor weights, Tensor tokensPerExpert);

    /// <summary>
    /// Whether <see cref="Forward"/> reads nothing back to the host (when the layer's own compute path does not
    /// either), so that a decode step through it can be captured as a CUDA graph.
    /// </summary>
    bool SyncFree { get; }

    /// <summary>The layer's routed picks per shard (what a group's imbalance is about) from its picks per expert.</summary>
    long[] TokensPerShard(long[] tokensPerExpert);

    /// <summary>Allocates what the dispatch keeps on <paramref name="device"/> (its lookup tables) as the layer is materialised there.</summary>
    void Allocate(Device device);
}
