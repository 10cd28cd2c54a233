using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// One member's side of a placement change, the one home for every member that holds experts: a
/// leader-shape rank (on its tensor thread), the leader itself and a data-parallel rank (on the engine
/// thread, between steps).
/// <list type="bullet">
/// <item><b>Prepare</b> stages the next placement's experts beside those in force, one MoE layer per
/// work item so the member's other work (Compute calls, steps) goes on in between, and lets peers that
/// already switched be answered with them.</item>
/// <item><b>Commit</b> puts them in force. In the leader shape the old experts are freed; with
/// data-parallel attention (<c>retire</c>) they stay, answering peers that still route by the last
/// placement, until <b>Abandon</b> of that version once every rank has switched.</item>
/// <item><b>Abandon</b> frees the experts of a version held beside (staged or retired).</item>
/// </list>
/// Over a lockstep transport (data-parallel attention over NCCL) Commit offers the switch to the
/// forward agreement instead, and every rank switches at the first agreement in which all offer it.
/// </summary>
public sealed class PlacementStaging(ExpertGroup group, IModelThread thread, bool retire, LockstepExpertTransport? lockstep = null) : IDisposable
{
    /// <summary>How long a lockstep commit waits for every rank to offer the same switch.</summary>
    private static readonly TimeSpan AgreementWait = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _changing = new(1, 1);
    private readonly int _rank = group.Settings.Rank;
    // Touched on the model's thread only: the experts held beside those in force, staged or retired.
    private (ExpertPlacement? Staged, long Version, List<StagedExperts> Layers)? _beside;

    /// <summary>Stages <paramref name="next"/> beside the placement in force (replacing anything held beside it).</summary>
    /// <exception cref="InvalidOperationException">The experts could not be loaded (what was staged is freed).</exception>
    public async Task<PlacementReply> PrepareAsync(DeepSeekForCausalLM model, ExpertPlacement next, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(next);
        await _changing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await thread.RunAsync(() => FreeBeside(model), CancellationToken.None).ConfigureAwait(false);
            if (next.Version == group.Placement.Version) return new PlacementReply { PlacementVersion = next.Version };
            var staged = new List<StagedExperts>();
            var loaded = 0;
            try
            {
                using var checkpoint = SafetensorsCheckpoint.Open(group.Model.Directory);
                foreach (var layer in next.Layers)
                {
                    // One layer per work item: the member's other work runs in between.
                    var (move, experts) = await thread.RunAsync(() => ExpertParallelism.StageLayer(model, next, layer.LayerIndex, _rank, checkpoint), cancellationToken).ConfigureAwait(false);
                    staged.Add(experts);
                    loaded += move.Load.Count;
                }
            }
            catch (Exception e)
            {
                await thread.RunAsync(() => Free(staged), CancellationToken.None).ConfigureAwait(false);
                if (e is ArgumentException or OperationCanceledException) throw;
                throw new InvalidOperationException($"Rank {_rank} could not load the experts of placement {next.Version}: {e.Message}", e);
            }
            await thread.RunAsync(() =>
            {
                // A peer that commits first routes by the next placement at once.
                ExpertParallelism.AnswerBeside(model, staged);
                _beside = (next, next.Version, staged);
                group.HoldsBeside(next.Version);
                return true;
            }, CancellationToken.None).ConfigureAwait(false);
            return new PlacementReply { PlacementVersion = group.Placement.Version, ExpertsMoved = loaded };
        }
        finally
        {
            _changing.Release();
        }
    }

    /// <summary>Puts the staged placement <paramref name="version"/> in force (between steps); nothing to do when it already is.</summary>
    /// <exception cref="InvalidOperationException">That version is neither in force nor staged, or (lockstep) not every rank offered it in time.</exception>
    public async Task<PlacementReply> CommitAsync(DeepSeekForCausalLM model, long version)
    {
        if (lockstep is null) return await thread.RunAsync(() => Commit(model, version), CancellationToken.None).ConfigureAwait(false);
        var agreed = await thread.RunAsync(() =>
        {
            if (group.Placement.Version == version) return Task.CompletedTask;
            CheckStaged(version);
            return lockstep.OfferSwitch(version, () => Commit(model, version));
        }, CancellationToken.None).ConfigureAwait(false);
        try
        {
            await agreed.WaitAsync(AgreementWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Withdrawn on the engine thread, so it either switched already or never will for this offer.
            if (await thread.RunAsync(() => lockstep.WithdrawSwitch(version), CancellationToken.None).ConfigureAwait(false))
                throw new InvalidOperationException($"Rank {_rank} offered to switch to placement {version}, but not every rank did within {AgreementWait.TotalSeconds:0} s; it stays on placement {group.Placement.Version}.");
        }
        return new PlacementReply { PlacementVersion = group.Placement.Version };
    }

    private ExpertPlacement CheckStaged(long version) => _beside is { Staged: { } next } && next.Version == version ? next
        : throw new InvalidOperationException($"Rank {_rank} runs placement {group.Placement.Version} and has not prepared placement {version}{(_beside is { Staged: { } other } ? $" (it has {other.Version} staged)" : "")}.");

    /// <summary><see cref="CommitAsync"/>'s work, for a caller already on the model's thread between steps.</summary>
    public PlacementReply Commit(DeepSeekForCausalLM model, long version)
    {
        ArgumentNullException.ThrowIfNull(model);
        var current = group.Placement;
        if (current.Version == version) return new PlacementReply { PlacementVersion = version };
        var next = CheckStaged(version);
        var freed = PlacementChange.For(current, next, _rank).Sum(m => m.Free.Count);
        var retired = ExpertParallelism.Switch(model, next, _beside!.Value.Layers, retire);
        // Switch took the staged stacks over (and put the retired ones beside, if any).
        _beside = retire ? (null, current.Version, [.. retired]) : null;
        group.Switched(next);
        group.HoldsBeside(retire ? current.Version : null);
        return new PlacementReply { PlacementVersion = version, ExpertsMoved = retire ? 0 : freed };
    }

    /// <summary>Frees the experts of placement <paramref name="version"/> held beside those in force, if any.</summary>
    public Task<PlacementReply> AbandonAsync(DeepSeekForCausalLM model, long version) => thread.RunAsync(() =>
    {
        if (_beside is { } beside && beside.Version == version) FreeBeside(model);
        return new PlacementReply { PlacementVersion = group.Placement.Version };
    }, CancellationToken.None);

    /// <summary>Frees whatever is held beside (on the model's thread).</summary>
    private bool FreeBeside(DeepSeekForCausalLM model)
    {
        if (_beside is not { } beside) return false;
        if (beside.Staged is { } staged) lockstep?.WithdrawSwitch(staged.Version);
        ExpertParallelism.AnswerBeside(model, null);
        group.HoldsBeside(null);
        _beside = null;
        return Free(beside.Layers);
    }

    private static bool Free(List<StagedExperts> layers)
    {
        foreach (var layer in layers) layer.Dispose();
        layers.Clear();
        return true;
    }

    /// <summary>After the model's thread has stopped: frees what is still held beside.</summary>
    public void Dispose()
    {
        if (_beside is { } beside) Free(beside.Layers);
        _beside = null;
        _changing.Dispose();
    }
}
