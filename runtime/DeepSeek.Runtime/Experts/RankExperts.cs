using System.Collections.Concurrent;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A non-leader rank's work: its shard of the model answers the leader's Compute calls, one at a
/// time, on the rank's own tensor thread (dispose scopes are per thread, and one thread keeps the
/// device's work in order). gRPC handlers only queue work and await it.
/// <para>
/// A placement change comes in two calls from the leader. Prepare stages the next placement's
/// experts beside those in force, one MoE layer per work item so Compute calls of the placement in
/// force go on in between; Commit, between two of the leader's steps, switches to it and frees what
/// is no longer held. Compute takes only the version in force, checked on the tensor thread, so a
/// call is computed by exactly the placement it was routed by.
/// </para>
/// </summary>
public sealed class RankExperts : IRankExperts, IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;
    private readonly ExpertGroup _group;
    private readonly int _rank;
    private readonly int _worldSize;
    private readonly SemaphoreSlim _changing = new(1, 1);
    private DeepSeekForCausalLM? _model;
    // Touched on the tensor thread only.
    private (ExpertPlacement Placement, List<StagedExperts> Layers)? _staged;

    public RankExperts(ExpertGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        _group = group;
        _rank = group.Settings.Rank;
        _worldSize = group.Settings.WorldSize;
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
        RunAsync(() => work(_model ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet.")), cancellationToken);

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
        return RunAsync(() => PeerCompute.Answer(_model ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet."), _group, request), cancellationToken);
    }

    /// <summary>Stages <paramref name="request"/>'s placement beside the one in force (replacing any other staged one).</summary>
    /// <exception cref="ArgumentException">Not a placement of this group and model.</exception>
    /// <exception cref="InvalidOperationException">Not loaded yet, or the experts could not be loaded (the staged part is freed).</exception>
    public async Task<PlacementReply> PrepareAsync(PreparePlacementRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = Volatile.Read(ref _model) ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet.");
        var next = PlacementMessages.FromRequest(request, _worldSize, [.. model.RoutedExperts.Select(e => e.LayerIndex)], model.Config.NRoutedExperts);
        await _changing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RunAsync(AbandonStaged, CancellationToken.None).ConfigureAwait(false);
            if (next.Version == _group.Placement.Version) return new PlacementReply { PlacementVersion = next.Version };
            var staged = new List<StagedExperts>();
            var loaded = 0;
            try
            {
                using var checkpoint = SafetensorsCheckpoint.Open(_group.Model.Directory);
                foreach (var layer in next.Layers)
                {
                    // One layer per work item: Compute calls of the placement in force run in between.
                    var (move, experts) = await RunAsync(() => ExpertParallelism.StageLayer(model, next, layer.LayerIndex, _rank, checkpoint), cancellationToken).ConfigureAwait(false);
                    staged.Add(experts);
                    loaded += move.Load.Count;
                }
            }
            catch (Exception e)
            {
                await RunAsync(() => Free(staged), CancellationToken.None).ConfigureAwait(false);
                if (e is ArgumentException or OperationCanceledException) throw;
                throw new InvalidOperationException($"Rank {_rank} could not load the experts of placement {next.Version}: {e.Message}", e);
            }
            await RunAsync(() =>
            {
                _staged = (next, staged);
                return true;
            }, CancellationToken.None).ConfigureAwait(false);
            return new PlacementReply { PlacementVersion = _group.Placement.Version, ExpertsMoved = loaded };
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>Puts the staged placement <paramref name="version"/> in force and frees the experts no longer held; nothing to do when it already is.</summary>
    /// <exception cref="InvalidOperationException">That version is neither in force nor staged.</exception>
    public Task<PlacementReply> CommitAsync(long version) => RunAsync(() =>
    {
        var model = _model ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet.");
        var current = _group.Placement;
        if (current.Version == version) return new PlacementReply { PlacementVersion = version };
        if (_staged is not { } staged || staged.Placement.Version != version)
            throw new InvalidOperationException($"Rank {_rank} runs placement {current.Version} and has not prepared placement {version}{(_staged is { } other ? $" (it has {other.Placement.Version} staged)" : "")}.");
        var freed = PlacementChange.For(current, staged.Placement, _rank).Sum(m => m.Free.Count);
        ExpertParallelism.Switch(model, staged.Placement, staged.Layers);
        _staged = null;
        _group.Switched(staged.Placement);
        return new PlacementReply { PlacementVersion = version, ExpertsMoved = freed };
    }, CancellationToken.None);

    /// <summary>Frees the staged placement <paramref name="version"/>, if that is the one staged.</summary>
    public Task<PlacementReply> AbandonAsync(long version) => RunAsync(() =>
    {
        if (_staged is { } staged && staged.Placement.Version == version) AbandonStaged();
        return new PlacementReply { PlacementVersion = _group.Placement.Version };
    }, CancellationToken.None);

    private bool AbandonStaged()
    {
        if (_staged is { } staged) Free(staged.Layers);
        _staged = null;
        return true;
    }

    private static bool Free(List<StagedExperts> staged)
    {
        foreach (var layer in staged) layer.Dispose();
        staged.Clear();
        return true;
    }

    private Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
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

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable()) work();
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _work.Dispose();
        if (_staged is { } staged) Free(staged.Layers);
        _model?.Dispose();
        _changing.Dispose();
    }
}
