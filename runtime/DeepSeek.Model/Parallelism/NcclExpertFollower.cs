using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>How a rank's <see cref="NcclExpertFollower.Follow"/> ended.</summary>
public enum FollowEnd
{
    /// <summary>The leader said it leaves the group.</summary>
    Stopped,
    /// <summary>This process is stopping.</summary>
    Cancelled,
    /// <summary>The group failed (leader silent, a collective failed, the ranks disagree); it was aborted.</summary>
    Failed,
}

/// <param name="End">Why the loop ended.</param>
/// <param name="Reason">In words, for the log.</param>
/// <param name="RowsServed">Routed rows this rank computed in the group.</param>
public sealed record FollowOutcome(FollowEnd End, string Reason, long RowsServed);

/// <summary>
/// A non-leader rank's side of the NCCL transport (<see cref="NcclExpertTransport"/> is the leader's):
/// on the rank's tensor thread, wait for the leader's header and run the collectives it announces, in
/// lockstep: receive this rank's rows, compute them with the experts it holds, send the weighted sums
/// back. Every wait is bounded: a leader silent for longer than the idle deadline (it sends heartbeats
/// while idle) or a collective not done within the deadline ends the loop with the group aborted; the
/// caller disposes it and joins the next formation.
/// <para>
/// The loop owns the rank's tensor thread for the group's life, so the rank's other work on the model (a
/// placement change: staging the next experts, then the switch the leader asks for between two of its
/// steps) runs between two headers through <c>betweenHeaders</c>: while the leader steps, after each of
/// its layers; while it idles, at each heartbeat. A layer's header then names the placement in force.
/// </para>
/// </summary>
public static class NcclExpertFollower
{
    public static FollowOutcome Follow(IProcessGroup group, DeepSeekForCausalLM model, TimeSpan idleDeadline, TimeSpan deadline,
        CancellationToken cancellationToken, Action? betweenHeaders = null)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(model);
        var rank = group.Rank;
        var world = group.WorldSize;
        var device = model.Device;
        var layers = model.RoutedExperts.ToDictionary(e => e.LayerIndex);
        var hiddenSize = layers.Values.FirstOrDefault()?.HiddenSize ?? throw new ArgumentException("The model has no MoE layer.", nameof(model));
        long served = 0;
        FollowOutcome Failed(string reason)
        {
            group.Abort();
            return new FollowOutcome(FollowEnd.Failed, reason, served);
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            betweenHeaders?.Invoke();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            ExpertExchangeHeader header;
            try
            {
                var values = zeros([ExpertExchangeHeader.Length(world)], ScalarType.Int64, device);
                group.Broadcast(values, 0, idleDeadline);
                header = ExpertExchangeHeader.Parse(values.cpu().data<long>().ToArray(), world);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return cancellationToken.IsCancellationRequested
                    ? new FollowOutcome(FollowEnd.Cancelled, "this process is stopping", served)
                    : Failed($"no word from the leader within {idleDeadline.TotalSeconds:0.#} s: {e.Message}");
            }
            switch (header.Command)
            {
                case ExchangeCommand.Heartbeat:
                    continue;
                case ExchangeCommand.Stop:
                    return new FollowOutcome(FollowEnd.Stopped, "the leader left the group", served);
            }
            var placementVersion = ExpertParallelism.VersionOf(model);
            if (header.PlacementVersion != placementVersion)
                return Failed($"the leader sent layer {header.Layer} for placement {header.PlacementVersion}; this rank runs placement {placementVersion}");
            if (!layers.TryGetValue(header.Layer, out var experts))
                return Failed($"the leader sent layer {header.Layer}, which is not a MoE layer of this model");
            try
            {
                var rows = header.RowsPerRank[rank];
                var k = header.ExpertsPerToken;
                var fromLeader = new long[world];
                fromLeader[0] = rows;
                var none = new long[world];
                var hidden = empty([rows, hiddenSize], model.DType, device);
                var ids = empty([rows, k], ScalarType.Int64, device);
                var weights = empty([rows, k], ScalarType.Float32, device);
                group.AllToAll(hidden, empty([0, hiddenSize], model.DType, device), fromLeader, none, deadline);
                group.AllToAll(ids, empty([0, k], ScalarType.Int64, device), fromLeader, none, deadline);
                group.AllToAll(weights, empty([0, k], ScalarType.Float32, device), fromLeader, none, deadline);
                var output = rows > 0
                    ? ExpertParallelism.ComputeHeld(experts, new ExpertBatch(rank, hidden, ids, weights)).to(model.DType).contiguous()
                    : empty([0, hiddenSize], model.DType, device);
                group.AllToAll(empty([0, hiddenSize], model.DType, device), output, none, fromLeader, deadline);
                served += rows;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return Failed($"layer {header.Layer}: {e.Message}");
            }
        }
        return new FollowOutcome(FollowEnd.Cancelled, "this process is stopping", served);
    }
}
