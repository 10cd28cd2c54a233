using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// An expert-parallel group whose ranks are models in this process: each rank's transport calls the
/// peer's <see cref="ShardedExperts.ComputeHeld(ExpertBatch, long?)"/> directly, on the calling thread. For tests
/// and for trying a placement on one machine: it runs exactly the dispatch and combine of a real group
/// with none of the wire.
/// </summary>
public sealed class InProcessExpertGroup
{
    private readonly DeepSeekForCausalLM?[] _ranks;
    private readonly long[] _picksServed;

    public InProcessExpertGroup(int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        _ranks = new DeepSeekForCausalLM?[worldSize];
        _picksServed = new long[worldSize];
    }

    public int WorldSize => _ranks.Length;

    /// <summary>Routed picks each rank computed for its peers so far (its own share not included).</summary>
    public IReadOnlyList<long> PicksServed => _picksServed;

    /// <summary>The transport a model of <paramref name="rank"/> is sharded with.</summary>
    public IExpertTransport TransportFor(int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, WorldSize);
        return new Transport(this, rank);
    }

    /// <summary>Makes <paramref name="model"/> (sharded for <paramref name="rank"/> and materialised) reachable by its peers.</summary>
    public void Join(int rank, DeepSeekForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _ranks[rank] = model;
    }

    private Tensor Serve(int from, int layerIndex, long placementVersion, ExpertBatch batch)
    {
        if (batch.Rank == from) throw new ArgumentException($"Rank {from} dispatched a batch to itself.", nameof(batch));
        var peer = _ranks[batch.Rank] ?? throw new ExpertTransportException($"Rank {batch.Rank} has not joined the group.");
        var experts = peer.RoutedExperts.FirstOrDefault(e => e.LayerIndex == layerIndex)
            ?? throw new ExpertTransportException($"Rank {batch.Rank} has no MoE layer {layerIndex}.");
        Tensor answer;
        try
        {
            // The peer computes by the version the picks were routed by: its own, or the one it holds beside it.
            answer = ExpertParallelism.ComputeHeld(experts, batch, placementVersion);
        }
        catch (InvalidOperationException e)
        {
            throw new ExpertTransportException($"Rank {from} routed layer {layerIndex} by placement {placementVersion}: {e.Message}", e);
        }
        _picksServed[batch.Rank] += batch.ExpertIds.ge(Modeling.HeldScalars.Zero).sum().item<long>();
        return answer;
    }

    private sealed class Transport(InProcessExpertGroup group, int rank) : IExpertTransport
    {
        public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches) =>
            new CompletedCombine([.. batches.Select(batch => group.Serve(rank, layerIndex, placementVersion, batch))]);
    }
}
