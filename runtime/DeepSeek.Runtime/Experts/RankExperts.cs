using System.Collections.Concurrent;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A non-leader rank's work: its shard of the model answers the leader's Compute calls, one at a
/// time, on the rank's own tensor thread (dispose scopes are per thread, and one thread keeps the
/// device's work in order). gRPC handlers only queue work and await it. A placement change comes in
/// two calls from the leader (<see cref="PlacementStaging"/>, run on the same thread): Prepare stages
/// the next placement beside the one in force, Commit switches between two of the leader's steps.
/// </summary>
public sealed class RankExperts : IRankExperts, IModelThread, IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;
    private readonly ExpertGroup _group;
    private readonly int _rank;
    private readonly int _worldSize;
    private readonly PlacementStaging _staging;
    private DeepSeekForCausalLM? _model;

    public RankExperts(ExpertGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        _group = group;
        _rank = group.Settings.Rank;
        _worldSize = group.Settings.WorldSize;
        _staging = new PlacementStaging(group, this, retire: false);
        _thread = new Thread(Run) { IsBackground = true, Name = $"rank-{_rank}-experts" };
        _thread.Start();
    }

    /// <summary>Loads the shard on the tensor thread (the model is created and materialised there).</summary>
    public Task LoadAsync(Func<DeepSeekForCausalLM> load) => RunAsync(() =>
    {
        _model = load();
        return true;
    }, CancellationToken.None);

    public bool IsReady => Volatile.Read(ref _model) is not null;

    /// <summary>Runs <paramref name="work"/> with the loaded shard on the tensor thread (the NCCL transport's follower loop lives there).</summary>
    public Task<T> RunWithModelAsync<T>(Func<DeepSeekForCausalLM, T> work, CancellationToken cancellationToken) =>
        RunAsync(() => work(Model), cancellationToken);

    private DeepSeekForCausalLM Model => Volatile.Read(ref _model) ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet.");

    public RankStatus Status()
    {
        var status = new RankStatus
        {
            Rank = _rank,
            WorldSize = _worldSize,
            Ready = IsReady,
            ModelFingerprint = _group.Fingerprint,
            PlacementVersion = _group.Placement.Version,
        };
        if (Volatile.Read(ref _model) is { } model) status.LocalExperts.AddRange(model.RoutedExperts.Select(e => e.HeldExperts.Count));
        return status;
    }

    public Task<ComputeReply> ComputeAsync(ComputeRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return RunAsync(() => PeerCompute.Answer(Model, _group, request), cancellationToken);
    }

    /// <exception cref="ArgumentException">Not a placement of this group and model.</exception>
    /// <exception cref="InvalidOperationException">Not loaded yet, or the experts could not be loaded (the staged part is freed).</exception>
    public Task<PlacementReply> PrepareAsync(PreparePlacementRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = Model;
        var next = PlacementMessages.FromRequest(request, _worldSize, [.. model.RoutedExperts.Select(e => e.LayerIndex)], model.Config.NRoutedExperts);
        return _staging.PrepareAsync(model, next, cancellationToken);
    }

    public Task<PlacementReply> CommitAsync(long version) => _staging.CommitAsync(Model, version);

    public Task<PlacementReply> AbandonAsync(long version) => _staging.AbandonAsync(Model, version);

    /// <summary>A leader-shape rank routes no tokens of its own: the leader observes the group's load.</summary>
    public ExpertLoadReply ExpertLoad() => new();

    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            if (cancellationToken.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellationToken);
                return;
            }
            try
            {
                completion.TrySetResult(work());
            }
            catch (Exception e)
            {
                completion.TrySetException(e);
            }
        }, CancellationToken.None);
        return completion.Task;
    }

    /// <summary>
    /// Runs the work queued for the tensor thread so far (a placement's staging and commit), from inside a
    /// long work item on it: the NCCL follower loop calls this between the leader's headers. Tensor thread only.
    /// </summary>
    public void RunPending()
    {
        if (Thread.CurrentThread != _thread) throw new InvalidOperationException("Queued work runs on the rank's tensor thread only.");
        while (_work.TryTake(out var work)) work();
    }

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable()) work();
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _work.Dispose();
        _staging.Dispose();
        _model?.Dispose();
    }
}
