using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// Data-parallel attention over a collective group (NCCL's on GPUs, design.md §2.5.1): every rank runs its
/// own requests with its own KV cache, and at each MoE layer exchanges routed rows with every other rank,
/// all-to-all each way, so no rank relays another's tokens. Collectives need every rank in every
/// exchange, so the ranks run their forwards in lockstep:
/// <list type="number">
/// <item>before every forward, each rank calls <see cref="AgreeForward"/> with its own token count (0: it
/// has none): one all-gather of every rank's count. While every count is 0 the ranks are idle and call it
/// again (<see cref="IdleTurn"/>) when their own work arrives or an idle interval has passed;</item>
/// <item>when any count is above 0, each rank with tokens runs its forward and each without runs
/// <see cref="JoinForward"/>: the same MoE layers' exchanges, in the same order, with an empty batch, so
/// it still computes what its peers send it;</item>
/// <item>per MoE layer, in one of two forms the agreement chose for the forward on every rank alike:
/// <list type="bullet">
/// <item>with split sizes (<see cref="Dispatch"/>, then <see cref="IExpertCombine.Combine"/>): an
/// announce all-to-all of <c>[layer, placement version, rows]</c> per destination, which gives the split
/// sizes and catches ranks out of step; the rows, their expert ids and weights all-to-all with those
/// splits; the rows received computed with the experts held here while the caller computes its own
/// share; the answers all-to-all back;</item>
/// <item>at a fixed capacity (<see cref="ExchangeFixed"/>), when every rank's forward is a decode step (or
/// it has none) and all run one placement: each rank sends every rank the same <see cref="FixedRows"/>
/// rows, so the split sizes are known before the forward and no layer reads anything back to the host.
/// Such a forward has static shapes and is captured as a CUDA graph (the collectives inside it).</item>
/// </list></item>
/// </list>
/// A placement change (rebalancing) is committed in the agreement too: each rank offers the version it
/// staged (<see cref="OfferSwitch"/>), and the first agreement in which every rank offers it switches
/// them all before the next forward.
/// Every host wait is bounded by the deadline: a rank lost, stuck or out of step fails the forward with
/// <see cref="ExpertTransportException"/>, aborts the group and detaches it, and later calls fail at once
/// until <see cref="Attach"/> gives a new group. All calls but <see cref="Attach"/> come from the engine
/// thread of the rank's process.
/// </summary>
public sealed class LockstepExpertTransport : IExpertTransport, IGroupBoundTransport, IDisposable
{
    /// <summary>Values per destination in the announce: layer, placement version, rows.</summary>
    private const int AnnounceValues = 3;

    /// <summary>Values per rank in the agreement: tokens, the placement version offered, decode rows, the placement version in force.</summary>
    private const int AgreementValues = 4;

    /// <summary>
    /// The most rows a rank sends each rank in the fixed form (a decode step's padded batch). Every rank sends
    /// every rank this many rows whatever its picks, so past it the form with split sizes moves fewer bytes.
    /// </summary>
    public const long MaxFixedRows = 256;

    /// <summary>What a rank agrees with when its forward is not a decode step: the exchange takes split sizes.</summary>
    public const long NotDecode = -1;

    private readonly TimeSpan _deadline;
    private readonly TimeSpan _firstFormationWait;
    private readonly ManualResetEventSlim _firstAttach = new(false);
    private IReadOnlyList<RoutedExperts> _layers = [];
    private Dictionary<int, RoutedExperts> _byLayer = [];
    private DeepSeekForCausalLM? _model;
    private IProcessGroup? _group;
    private string _detachedBecause = "the group has not formed yet";
    private string? _abortedBecause;
    private bool _inFlight;
    // MoE layers exchanged since the last agreed forward of this rank, or −1 when none is open: the next
    // agreement checks the forward went through every layer (a forward that threw half-way leaves its
    // peers inside the exchanges it skipped).
    private int _layersOfForward = -1;
    // A placement switch this rank offers (engine thread only): it runs at the first agreement in which
    // every rank offers the same version, so all switch between the same two forwards.
    private (long Version, Action Switch, TaskCompletionSource Done)? _offer;

    /// <param name="deadline">How long any collective may keep the host waiting before the group counts as failed.</param>
    /// <param name="firstFormationWait">
    /// How long a forward waits for the first group (the engine's warm-up may run while its peers still load);
    /// once a group was attached, a forward without one fails at once.
    /// </param>
    public LockstepExpertTransport(TimeSpan deadline, TimeSpan firstFormationWait = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(deadline, TimeSpan.Zero);
        _deadline = deadline;
        _firstFormationWait = firstFormationWait;
    }

    /// <summary>Raised on the failing thread when a failure detaches the group; the argument says why.</summary>
    public event Action<string>? Detached;

    /// <summary>The group in use, or null while none is formed.</summary>
    public IProcessGroup? Group => Volatile.Read(ref _group);

    /// <summary>Why no group is attached (the last failure), for readiness messages.</summary>
    public string DetachedBecause => Volatile.Read(ref _detachedBecause);

    /// <summary>Rows of its peers' tokens this rank computed.</summary>
    public long RowsServed { get; private set; }

    /// <summary>
    /// The rows every rank sends every rank at each MoE layer of the forward just agreed (the largest decode
    /// batch any rank proposed), or null when that forward exchanges with split sizes.
    /// </summary>
    public long? FixedRows { get; private set; }

    /// <summary>Forwards agreed so far that exchanged at a fixed capacity (<see cref="FixedRows"/>).</summary>
    public long FixedForwards { get; private set; }

    /// <summary>
    /// The model this rank runs, sharded by <see cref="ExpertParallelism.Apply"/> with this transport and
    /// materialised: its MoE layers compute the rows peers send.
    /// </summary>
    public void Bind(DeepSeekForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!model.IsMaterialised) throw new InvalidOperationException("Bind the model once it is materialised.");
        _layers = [.. model.RoutedExperts.OrderBy(e => e.LayerIndex)];
        if (_layers.Count == 0) throw new ArgumentException("The model has no MoE layer to exchange.", nameof(model));
        _byLayer = _layers.ToDictionary(e => e.LayerIndex);
        _model = model;
    }

    /// <summary>
    /// Starts using <paramref name="group"/> (formed and agreed); only while none is attached, so the engine
    /// thread never holds the one it replaces. Its collectives run on the bound model's device.
    /// </summary>
    public void Attach(IProcessGroup group, Device device)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(device);
        if (Interlocked.CompareExchange(ref _group, group, null) is not null)
            throw new InvalidOperationException("A group is attached already; a new one is attached after the old one failed.");
        Volatile.Write(ref _abortedBecause, null);
        _firstAttach.Set();
    }

    /// <summary>Records why no group is attached (a formation that failed), for readiness messages.</summary>
    public void Detach(string reason) => Volatile.Write(ref _detachedBecause, reason);

    /// <summary>
    /// Ends the group's collectives in flight now (any thread): a peer the control plane reports lost will not
    /// join them, and waiting out the deadline would hold this rank's requests. The engine thread's next or
    /// current collective then fails, and the group is detached there.
    /// </summary>
    public void Abort(string reason)
    {
        if (Volatile.Read(ref _group) is not { } group) return;
        Volatile.Write(ref _abortedBecause, reason);
        group.Abort();
    }

    /// <summary>Every rank's token count for the forward each is about to run, in rank order (this rank's own included).</summary>
    /// <param name="tokens">This rank's tokens in the forward (0: it has none).</param>
    /// <param name="decodeRows">
    /// When the forward is a decode step, the rows it exchanges at a fixed capacity (its batch, or the padded
    /// batch its captured graph runs); <see cref="NotDecode"/> otherwise. When every rank with tokens proposes
    /// rows, the forward exchanges at the largest proposal (<see cref="FixedRows"/>).
    /// </param>
    /// <exception cref="ExpertTransportException">No group, a rank lost, or this rank's previous forward did not finish its exchanges.</exception>
    public IReadOnlyList<long> AgreeForward(long tokens, long decodeRows = NotDecode)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(decodeRows, NotDecode);
        return Agree(Current(), tokens, tokens == 0 ? 0 : decodeRows);
    }

    /// <summary>
    /// The forward just agreed ran whole inside a replayed CUDA graph, so its exchanges were not counted as they
    /// ran: it counts as finished. Call after the replay.
    /// </summary>
    public void ReplayedForward()
    {
        if (_layersOfForward >= 0) _layersOfForward = _layers.Count;
    }

    /// <summary>
    /// The forward just agreed starts its exchanges over: a capture that failed part-way recorded some (none of
    /// which ran), and the forward now runs eagerly.
    /// </summary>
    public void RestartForward()
    {
        if (_layersOfForward >= 0) _layersOfForward = 0;
    }

    /// <summary>
    /// This rank leaves the group (its engine stops): one last agreement, in which it says so, lets every
    /// peer detach at once instead of waiting out the deadline for a turn that never comes.
    /// </summary>
    public void Leave()
    {
        if (Volatile.Read(ref _group) is not { } group) return;
        try
        {
            Agree(group, Leaving, NotDecode);
        }
        catch (ExpertTransportException)
        {
            // Detached either way.
        }
    }

    /// <summary>The count a leaving rank agrees with.</summary>
    private const long Leaving = -1;

    private long[] Agree(IProcessGroup group, long tokens, long decodeRows)
    {
        if (_layersOfForward >= 0 && _layersOfForward != _layers.Count)
            throw Fail(group, $"this rank's last forward stopped after {_layersOfForward} of {_layers.Count} MoE layers (it failed), so its peers wait in an exchange it will not run", null);
        long[] all;
        long[] offers;
        try
        {
            using var scope = NewDisposeScope();
            // Per rank: its token count, the placement version it offers to switch to (0: none), the rows it
            // proposes for a fixed-capacity exchange (NotDecode: none) and the placement version in force.
            var rows = zeros([group.WorldSize, AgreementValues], ScalarType.Int64, Device);
            var mine = new[] { tokens, _offer?.Version ?? 0, decodeRows, _layers.Count == 0 ? 0 : ExpertParallelism.VersionOf(_layers[0]) };
            group.AllGather(rows, tensor(mine, [1, AgreementValues], device: Device), _deadline);
            var gathered = rows.cpu().data<long>().ToArray();
            (all, offers) = (new long[group.WorldSize], new long[group.WorldSize]);
            for (var rank = 0; rank < group.WorldSize; rank++) (all[rank], offers[rank]) = (gathered[rank * AgreementValues], gathered[(rank * AgreementValues) + 1]);
            if (Array.IndexOf(all, Leaving) is var leaver and >= 0)
                throw Fail(group, leaver == group.Rank ? "this rank left the group" : $"rank {leaver} left the group", null);
            _layersOfForward = all.Any(c => c > 0) ? 0 : -1;
            FixedRows = FixedCapacity(gathered, group.WorldSize);
            if (FixedRows is not null) FixedForwards++;
        }
        catch (Exception e) when (e is not ExpertTransportException)
        {
            throw Fail(group, $"the forward agreement failed: {e.Message}", e);
        }
        // Every rank saw the same rows, so every rank switches here or none does.
        if (_offer is { } offer && offers.All(v => v == offer.Version))
        {
            _offer = null;
            try
            {
                offer.Switch();
                offer.Done.TrySetResult();
            }
            catch (Exception e)
            {
                offer.Done.TrySetException(e);
                throw Fail(group, $"switching to placement {offer.Version} failed on this rank ({e.Message}) while its peers switched", e);
            }
        }
        return all;
    }

    /// <summary>
    /// The rows of a fixed-capacity exchange every rank derives from the same agreement rows: the largest
    /// decode batch proposed, when some rank has tokens, none runs anything but a decode step, all run the
    /// same placement (so every rank routes a pick where its holder expects it), and it is at most
    /// <see cref="MaxFixedRows"/>; null otherwise.
    /// </summary>
    internal static long? FixedCapacity(IReadOnlyList<long> agreement, int worldSize)
    {
        long rows = 0;
        for (var rank = 0; rank < worldSize; rank++)
        {
            var (decodeRows, version) = (agreement[(rank * AgreementValues) + 2], agreement[(rank * AgreementValues) + 3]);
            if (decodeRows < 0 || version != agreement[3]) return null;
            rows = Math.Max(rows, decodeRows);
        }
        return rows is > 0 and <= MaxFixedRows ? rows : null;
    }

    /// <summary>
    /// Offers to switch to placement <paramref name="version"/>: <paramref name="switchPlacement"/> runs on the
    /// engine thread inside the first agreement in which every rank offers that version (between two
    /// forwards, the same two on every rank), and the task completes then. Replaces an earlier offer.
    /// Call on the engine thread.
    /// </summary>
    public Task OfferSwitch(long version, Action switchPlacement)
    {
        ArgumentNullException.ThrowIfNull(switchPlacement);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(version, 0);
        _offer?.Done.TrySetCanceled();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _offer = (version, switchPlacement, done);
        return done.Task;
    }

    /// <summary>Withdraws the offer to switch to <paramref name="version"/>, if it is still open (engine thread); false when there is none.</summary>
    public bool WithdrawSwitch(long version)
    {
        if (_offer is not { } offer || offer.Version != version) return false;
        _offer = null;
        offer.Done.TrySetCanceled();
        return true;
    }

    /// <summary>
    /// One agreement with nothing of this rank's own, and when a peer has work, its forward's exchanges
    /// (<see cref="JoinForward"/>). Returns whether a peer was stepping; false means every rank is idle.
    /// </summary>
    public bool IdleTurn()
    {
        if (!AgreeForward(0).Any(c => c > 0)) return false;
        JoinForward();
        return true;
    }

    /// <summary>A forward's exchanges with an empty batch of this rank's own: every MoE layer in order, answering the rows peers send.</summary>
    public void JoinForward()
    {
        if (_model is null) throw new InvalidOperationException("Bind the model before it joins its peers' forwards.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (FixedRows is not null)
        {
            foreach (var experts in _layers) _ = ExpertParallelism.ShardOf(experts)!.JoinFixed(_model.DType);
            return;
        }
        foreach (var experts in _layers) _ = Dispatch(experts.LayerIndex, ExpertParallelism.VersionOf(experts), []).Combine();
    }

    /// <summary>
    /// One MoE layer's exchange at the fixed capacity the agreement chose (<see cref="FixedRows"/>): chunk
    /// <c>r</c> of each input (<see cref="FixedRows"/> rows) goes to rank <c>r</c>, this rank's own chunk
    /// included; <paramref name="computeHeld"/> computes what every rank sent here; the answers go back. No
    /// host wait and no read back: the collectives are queued on the device, and a capture records them.
    /// </summary>
    /// <param name="layerIndex">The MoE layer exchanged.</param>
    /// <param name="hidden"><c>[world · rows, hidden]</c> in the model's dtype.</param>
    /// <param name="ids">Global expert ids <c>[world · rows, k]</c>, −1 for a pick another rank computes.</param>
    /// <param name="weights"><c>[world · rows, k]</c> float32, 0 where the id is −1.</param>
    /// <param name="computeHeld">This rank's answer to the rows received: <c>[world · rows, hidden]</c>.</param>
    /// <returns>Every rank's answers to this rank's rows, <c>[world · rows, hidden]</c> in rank order.</returns>
    public Tensor ExchangeFixed(int layerIndex, Tensor hidden, Tensor ids, Tensor weights, Func<ExpertBatch, Tensor> computeHeld)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(computeHeld);
        var group = Current();
        if (_inFlight) throw Fail(group, "an exchange was abandoned half-way (a step failed between dispatch and combine)", null);
        if (_layersOfForward < 0 || _layersOfForward >= _layers.Count || FixedRows is not { } rows)
            throw new InvalidOperationException("A fixed-capacity exchange follows an agreement that chose it (AgreeForward with decode rows on every rank).");
        if (!_byLayer.ContainsKey(layerIndex)) throw new ArgumentException($"Layer {layerIndex} is not a MoE layer of the bound model.", nameof(layerIndex));
        var total = rows * group.WorldSize;
        if (hidden.shape[0] != total || ids.shape[0] != total || weights.shape[0] != total)
            throw new ArgumentException($"A fixed-capacity exchange sends {rows} rows to each of {group.WorldSize} ranks ({total} rows), not [{string.Join(", ", hidden.shape)}].", nameof(hidden));
        Tensor back;
        try
        {
            var inHidden = empty_like(hidden);
            var inIds = empty_like(ids);
            var inWeights = empty_like(weights);
            group.AllToAll(inHidden, hidden, null, null, TimeSpan.Zero);
            group.AllToAll(inIds, ids, null, null, TimeSpan.Zero);
            group.AllToAll(inWeights, weights, null, null, TimeSpan.Zero);
            var answers = computeHeld(new ExpertBatch(group.Rank, inHidden, inIds, inWeights)).to(hidden.dtype).contiguous();
            back = empty_like(answers);
            group.AllToAll(back, answers, null, null, TimeSpan.Zero);
        }
        catch (Exception e) when (e is not ExpertTransportException)
        {
            var failed = Fail(group, $"the fixed-capacity exchange of layer {layerIndex} failed{(NativeHelper.IsCapturing ? " to be captured" : "")}: {e.Message}", e);
            // Capturing ran nothing, but the helper aborts a group whose collective failed: the group re-forms,
            // and decode steps stop being captured (DecodeGraphs turns capturing off on a capture's failure).
            if (NativeHelper.IsCapturing) throw new NativeHelperException(failed.Message, e);
            throw failed;
        }
        RowsServed += rows * (group.WorldSize - 1);
        _layersOfForward++;
        return back;
    }

    public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        var group = Current();
        if (_inFlight) throw Fail(group, "an exchange was abandoned half-way (a step failed between dispatch and combine)", null);
        // Nothing was issued yet, so the peers are unaffected: a forward of this rank that its peers did not agree to.
        if (_layersOfForward < 0 || _layersOfForward >= _layers.Count)
            throw new InvalidOperationException("A forward's exchanges follow its agreement (AgreeForward): every rank must know a forward is coming.");
        if (!_byLayer.TryGetValue(layerIndex, out var experts)) throw new ArgumentException($"Layer {layerIndex} is not a MoE layer of the bound model.", nameof(layerIndex));
        var world = group.WorldSize;
        var outRows = new long[world];
        foreach (var batch in batches)
        {
            if (batch.Rank < 0 || batch.Rank >= world || batch.Rank == group.Rank || outRows[batch.Rank] != 0)
                throw new ArgumentException($"Batches go to the ranks 0..{world - 1} but this one ({group.Rank}), at most one each; got rank {batch.Rank}.", nameof(batches));
            outRows[batch.Rank] = batch.Hidden.shape[0];
        }
        var ordered = batches.OrderBy(b => b.Rank).ToList();
        var hiddenSize = experts.HiddenSize;
        var k = experts.ExpertsPerToken;
        var dtype = _model!.DType;
        try
        {
            var inRows = Announce(group, layerIndex, placementVersion, outRows);
            Tensor Rows(Func<ExpertBatch, Tensor> part, long width, ScalarType type) =>
                ordered.Count == 0 ? empty([0, width], type, Device) : cat(ordered.Select(b => part(b).to(type)).ToList(), 0).contiguous();
            var hidden = Rows(b => b.Hidden, hiddenSize, dtype);
            var ids = Rows(b => b.ExpertIds, k, ScalarType.Int64);
            var weights = Rows(b => b.Weights, k, ScalarType.Float32);
            var received = inRows.Sum();
            var inHidden = empty([received, hiddenSize], dtype, Device);
            var inIds = empty([received, k], ScalarType.Int64, Device);
            var inWeights = empty([received, k], ScalarType.Float32, Device);
            group.AllToAll(inHidden, hidden, inRows, outRows, TimeSpan.Zero);
            group.AllToAll(inIds, ids, inRows, outRows, TimeSpan.Zero);
            group.AllToAll(inWeights, weights, inRows, outRows, TimeSpan.Zero);
            _inFlight = true;
            return new PendingExchange(this, group, experts, batches, outRows, inRows, new ExpertBatch(group.Rank, inHidden, inIds, inWeights));
        }
        catch (Exception e) when (e is not ExpertTransportException)
        {
            throw Fail(group, $"dispatch of layer {layerIndex} failed: {e.Message}", e);
        }
    }

    /// <summary>
    /// Every rank tells every other which layer and placement it exchanges and how many rows it sends
    /// there; returns the rows this rank receives from each. A rank at another layer or placement is out
    /// of step: nothing is computed, and the caller fails the group.
    /// </summary>
    private long[] Announce(IProcessGroup group, int layerIndex, long placementVersion, long[] outRows)
    {
        var world = group.WorldSize;
        var values = new long[world * AnnounceValues];
        for (var rank = 0; rank < world; rank++) (values[rank * AnnounceValues], values[rank * AnnounceValues + 1], values[rank * AnnounceValues + 2]) = (layerIndex, placementVersion, outRows[rank]);
        var heard = zeros([world, AnnounceValues], ScalarType.Int64, Device);
        group.AllToAll(heard, tensor(values, [world, AnnounceValues], device: Device), null, null, _deadline);
        var from = heard.cpu().data<long>().ToArray();
        var inRows = new long[world];
        for (var source = 0; source < world; source++)
        {
            var (layer, version, rows) = (from[source * AnnounceValues], from[source * AnnounceValues + 1], from[source * AnnounceValues + 2]);
            if (layer != layerIndex || version != placementVersion)
                throw new InvalidOperationException($"rank {source} exchanges layer {layer} under placement {version} where this rank (rank {group.Rank}) exchanges layer {layerIndex} under placement {placementVersion}: the ranks are out of step");
            if (rows < 0 || (source == group.Rank && rows != 0)) throw new InvalidOperationException($"rank {source} announced {rows} rows for rank {group.Rank}");
            inRows[source] = rows;
        }
        return inRows;
    }

    private IProcessGroup Current()
    {
        if (_firstFormationWait > TimeSpan.Zero) _firstAttach.Wait(_firstFormationWait);
        return Volatile.Read(ref _group) ?? throw new ExpertTransportException($"Expert-parallel group unavailable: {DetachedBecause}");
    }

    private Device Device => _model?.Device ?? throw new InvalidOperationException("Bind the model before exchanging.");

    /// <summary>Aborts and detaches <paramref name="group"/>, and says why as the forward's error.</summary>
    private ExpertTransportException Fail(IProcessGroup group, string reason, Exception? inner)
    {
        if (Volatile.Read(ref _abortedBecause) is { } aborted) reason = $"{aborted} ({reason})";
        var message = $"Expert-parallel group (generation {group.Generation}, rank {group.Rank} of {group.WorldSize}) failed: {reason}. Forwards fail until the group re-forms.";
        group.Abort();
        Volatile.Write(ref _detachedBecause, reason);
        Interlocked.CompareExchange(ref _group, null, group);
        (_inFlight, _layersOfForward) = (false, -1);
        group.Dispose();
        Detached?.Invoke(reason);
        return new ExpertTransportException(message, inner);
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _group, null)?.Dispose();
        _firstAttach.Dispose();
    }

    private sealed class PendingExchange(LockstepExpertTransport transport, IProcessGroup group, RoutedExperts experts, IReadOnlyList<ExpertBatch> batches,
        long[] outRows, long[] inRows, ExpertBatch received) : IExpertCombine
    {
        private bool _done;

        public IReadOnlyList<Tensor> Combine()
        {
            if (_done) throw new InvalidOperationException("This exchange was already combined.");
            _done = true;
            if (!ReferenceEquals(transport.Group, group)) throw new ExpertTransportException($"Expert-parallel group unavailable: {transport.DetachedBecause}");
            var device = received.Hidden.device;
            var dtype = received.Hidden.dtype;
            var hiddenSize = experts.HiddenSize;
            Tensor back;
            try
            {
                var answers = received.Hidden.shape[0] > 0
                    ? ExpertParallelism.ComputeHeld(experts, received).to(dtype).contiguous()
                    : empty([0, hiddenSize], dtype, device);
                back = empty([outRows.Sum(), hiddenSize], dtype, device);
                group.AllToAll(back, answers, outRows, inRows, transport._deadline);
            }
            catch (Exception e) when (e is not ExpertTransportException)
            {
                throw transport.Fail(group, $"combine of layer {experts.LayerIndex} failed: {e.Message}", e);
            }
            transport._inFlight = false;
            transport.RowsServed += received.Hidden.shape[0];
            if (transport._layersOfForward >= 0) transport._layersOfForward++;
            // Answers arrive in rank order; hand them back in the order dispatched.
            var offsets = new long[outRows.Length];
            for (var rank = 1; rank < outRows.Length; rank++) offsets[rank] = offsets[rank - 1] + outRows[rank - 1];
            return [.. batches.Select(b => back.narrow(0, offsets[b.Rank], outRows[b.Rank]))];
        }
    }
}
