using DeepSeek.Model.Modeling;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// What a rank with data-parallel attention does for its peers: it answers their Compute calls with
/// the model its own engine runs, on the engine thread (<see cref="PeerWork"/>: between its steps,
/// while idle, or while its own step waits for those peers), by the placement each call was routed by;
/// it moves its experts when rank 0 rebalances (<see cref="PlacementStaging"/> between its steps,
/// keeping the last placement's experts until every rank has switched); and it reports the picks its
/// own forwards routed (<paramref name="load"/>, when the group rebalances).
/// </summary>
public sealed class EngineRankExperts(ExpertGroup group, EngineService engine, PeerWork work, PlacementStaging staging, ObservedExpertLoad? load) : IRankExperts
{
    private bool Loaded => engine.Loaded.IsCompletedSuccessfully && group.EngineModel is not null;

    private DeepSeekForCausalLM Model => Loaded ? group.EngineModel! : throw new InvalidOperationException($"Rank {group.Settings.Rank} has not loaded its model yet.");

    public RankStatus Status()
    {
        var status = new RankStatus
        {
            Rank = group.Settings.Rank,
            WorldSize = group.Settings.WorldSize,
            Ready = Loaded,
            ModelFingerprint = group.Fingerprint,
            PlacementVersion = group.Placement.Version,
        };
        if (Loaded) status.LocalExperts.AddRange(group.EngineModel!.RoutedExperts.Select(e => e.HeldExperts.Count));
        return status;
    }

    public Task<ComputeReply> ComputeAsync(ComputeRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = Model;
        var answer = work.Post(() => PeerCompute.Answer(model, group, request));
        // An idle engine is woken to run it; a busy one runs it between steps, or sooner while it waits for its peers.
        _ = engine.Loaded.Result.RunBetweenStepsAsync(work.RunPending);
        return answer.WaitAsync(cancellationToken);
    }

    public Task<PlacementReply> PrepareAsync(PreparePlacementRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = Model;
        var next = PlacementMessages.FromRequest(request, group.Settings.WorldSize, [.. model.RoutedExperts.Select(e => e.LayerIndex)], model.Config.NRoutedExperts);
        return staging.PrepareAsync(model, next, cancellationToken);
    }

    public Task<PlacementReply> CommitAsync(long version) => staging.CommitAsync(Model, version);

    public Task<PlacementReply> AbandonAsync(long version) => staging.AbandonAsync(Model, version);

    public ExpertLoadReply ExpertLoad() => load is null
        ? throw new InvalidOperationException($"Rank {group.Settings.Rank} does not observe its expert load: the group does not rebalance (--rebalance-interval-seconds 0).")
        : PlacementMessages.ToReply(load.Take());
}
