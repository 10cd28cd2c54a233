using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// What a rank with data-parallel attention does for its peers: it answers their Compute calls with
/// the model its own engine runs, on the engine thread (<see cref="PeerWork"/>: between its steps,
/// while idle, or while its own step waits for those peers). The placement never changes: the
/// calls that would move experts are refused.
/// </summary>
public sealed class EngineRankExperts(ExpertGroup group, EngineService engine, PeerWork work) : IRankExperts
{
    private bool Loaded => engine.Loaded.IsCompletedSuccessfully && group.EngineModel is not null;

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
        if (!Loaded) throw new InvalidOperationException($"Rank {group.Settings.Rank} has not loaded its model yet.");
        var model = group.EngineModel!;
        var answer = work.Post(() => PeerCompute.Answer(model, group, request));
        // An idle engine is woken to run it; a busy one runs it between steps, or sooner while it waits for its peers.
        _ = engine.Loaded.Result.RunBetweenStepsAsync(work.RunPending);
        return answer.WaitAsync(cancellationToken);
    }

    public Task<PlacementReply> PrepareAsync(PreparePlacementRequest request, CancellationToken cancellationToken) => Refuse();

    public Task<PlacementReply> CommitAsync(long version) => Refuse();

    public Task<PlacementReply> AbandonAsync(long version) => Refuse();

    private Task<PlacementReply> Refuse() => throw new InvalidOperationException(
        $"Rank {group.Settings.Rank} runs data-parallel attention, which keeps the initial placement (no rank leads a rebalance).");
}
