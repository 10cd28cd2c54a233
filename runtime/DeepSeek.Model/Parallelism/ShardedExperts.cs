using System.Globalization;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// One MoE layer's routed experts sharded over an expert-parallel group, as one rank runs them. The
/// pass (<see cref="ExpertParallelism.Apply"/>) installs it in the layer's <see cref="RoutedExperts"/>
/// before materialisation, which then holds only this rank's experts of the placement in force; this
/// module owns everything about ranks: the placement and its version, the rank, the
/// <see cref="IExpertTransport"/> and the lookup tables the routing needs on the device. A layer's
/// forward comes here: each pick goes to a rank holding its expert, a copy of a replicated expert
/// taking every n-th of that expert's picks; the picks of other ranks are dispatched through the
/// transport while the layer computes its own, and their answers are combined in. It also answers
/// what peers send (<see cref="ComputeHeld(ExpertBatch, long?)"/>) and changes the layer's placement
/// (<see cref="Stage"/>, then <see cref="Switch"/>).
/// </summary>
public sealed class ShardedExperts : IExpertDispatch
{
    private readonly RoutedExperts _experts;
    private RouteTables? _tables;
    // Another placement's experts this rank also answers peers for, while the ranks of a data-parallel
    // group switch one by one (each between its own steps): borrowed from their owner, with this rank's
    // lookup tables for them and their compute path.
    private (StagedExperts Experts, RouteTables Tables, LocalExperts Local)? _beside;

    private ShardedExperts(RoutedExperts experts, LayerPlacement placement, long version, int rank, IExpertTransport transport)
    {
        _experts = experts;
        Placement = placement;
        Version = version;
        Rank = rank;
        Transport = transport;
    }

    /// <summary>
    /// Keeps only <paramref name="rank"/>'s experts of <paramref name="placement"/> in
    /// <paramref name="experts"/> (still declared, so the others are never allocated) and sends the picks
    /// of the others through <paramref name="transport"/>. The layer owns the result.
    /// </summary>
    internal static ShardedExperts Install(RoutedExperts experts, LayerPlacement placement, long version, int rank, IExpertTransport transport)
    {
        ArgumentNullException.ThrowIfNull(experts);
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(transport);
        if (experts.IsSharded) throw new InvalidOperationException($"Layer {experts.LayerIndex} is already sharded.");
        if (placement.LayerIndex != experts.LayerIndex || placement.ExpertCount != experts.ExpertCount)
            throw new ArgumentException($"The placement is for layer {placement.LayerIndex} with {placement.ExpertCount} experts, not layer {experts.LayerIndex} with {experts.ExpertCount}.", nameof(placement));
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, placement.RankCount);
        var sharded = new ShardedExperts(experts, placement, version, rank, transport);
        experts.HoldOnly(placement.ExpertsOn(rank), sharded);
        return sharded;
    }

    public int LayerIndex => _experts.LayerIndex;

    /// <summary>The layer's placement in force (<see cref="Switch"/> puts the next one in force).</summary>
    public LayerPlacement Placement { get; private set; }

    /// <summary>The version of the placement in force: what every dispatch of this layer carries.</summary>
    public long Version { get; private set; }

    /// <summary>This process's rank in the group.</summary>
    public int Rank { get; }

    /// <summary>What carries the picks of other ranks' experts.</summary>
    internal IExpertTransport Transport { get; }

    /// <summary>Routed picks per rank of the placement (what the group's imbalance is about).</summary>
    public long[] TokensPerShard(long[] tokensPerExpert) => Placement.TokensPerRank(tokensPerExpert);

    void IExpertDispatch.Allocate(Device device) => _tables = RouteTables.Build(Placement, _experts.HeldExperts, device);

    private RouteTables Tables => _tables ?? throw new InvalidOperationException("The experts are not materialised yet.");

    /// <summary>
    /// <c>Σ_k weights[t,k] · expert_{ids[t,k]}(hidden[t])</c> for every token: the picks of experts held
    /// here computed by the layer, the others by the ranks the placement sends them to.
    /// </summary>
    /// <param name="hidden"><c>[T, hidden]</c>.</param>
    /// <param name="ids">Global expert ids <c>[T, k]</c>.</param>
    /// <param name="weights"><c>[T, k]</c>, in the dtype of <paramref name="hidden"/>.</param>
    /// <param name="tokensPerExpert">Picks per expert <c>[n_routed_experts]</c> on the device.</param>
    public Tensor Forward(Tensor hidden, Tensor ids, Tensor weights, Tensor tokensPerExpert)
    {
        if (Transport is LockstepExpertTransport { FixedRows: { } capacity } lockstep) return ForwardFixed(lockstep, capacity, hidden, ids, weights, tokensPerExpert);
        var destination = Tables.DestinationRanks(ids, tokensPerExpert);
        var batches = new List<ExpertBatch>();
        var rowsOfBatch = new List<Tensor>();
        for (var rank = 0; rank < Placement.RankCount; rank++)
        {
            if (rank == Rank) continue;
            using var rankScalar = rank.ToScalar(); // alive until eq has run (HeldScalars says why)
            var picked = destination.eq(rankScalar);
            var rows = picked.any(1).nonzero().squeeze(1);
            if (rows.shape[0] == 0) continue;
            var elsewhere = picked.index_select(0, rows).logical_not();
            batches.Add(new ExpertBatch(rank, hidden.index_select(0, rows), ids.index_select(0, rows).masked_fill(elsewhere, HeldScalars.MinusOne),
                weights.index_select(0, rows).masked_fill(elsewhere, HeldScalars.ZeroReal)));
            rowsOfBatch.Add(rows);
        }
        // Peers compute while this rank computes its own share.
        var pending = Transport.Dispatch(LayerIndex, Version, batches);
        using var ownRank = Rank.ToScalar();
        var output = ComputeHeld(hidden, ids.masked_fill(destination.ne(ownRank), HeldScalars.MinusOne), weights);
        var results = pending.Combine();
        if (results.Count != batches.Count)
            throw new InvalidOperationException($"Layer {LayerIndex}: the expert transport returned {results.Count} results for {batches.Count} batches.");
        var hiddenSize = _experts.HiddenSize;
        for (var i = 0; i < results.Count; i++)
        {
            if (results[i].shape is not [var rows, var size] || rows != rowsOfBatch[i].shape[0] || size != hiddenSize)
                throw new ExpertTransportException($"Layer {LayerIndex}: rank {batches[i].Rank} answered [{string.Join(", ", results[i].shape)}] for {rowsOfBatch[i].shape[0]} rows of {hiddenSize}.");
            output.index_add_(0, rowsOfBatch[i], results[i].to(output.dtype, output.device), HeldScalars.One);
        }
        return output;
    }

    /// <summary>
    /// Whether a forward of this layer runs without reading anything back to the host, so a decode step can be
    /// captured: over a lockstep transport, whose decode steps exchange at a fixed capacity
    /// (<see cref="LockstepExpertTransport.ExchangeFixed"/>), when the layer's own compute path is sync-free too.
    /// </summary>
    public bool SyncFree => Transport is LockstepExpertTransport;

    /// <summary>
    /// The layer's forward at the fixed capacity the ranks agreed (<paramref name="rows"/> a rank): the batch
    /// padded to it, each row sent to every rank with the picks of the others masked (id −1, weight 0), the
    /// rows received computed with the experts held here, and every rank's answers summed in rank order.
    /// Static shapes, no host read: what a captured decode step needs.
    /// </summary>
    private Tensor ForwardFixed(LockstepExpertTransport lockstep, long rows, Tensor hidden, Tensor ids, Tensor weights, Tensor tokensPerExpert)
    {
        var tokens = hidden.shape[0];
        if (tokens > rows) throw new InvalidOperationException($"Layer {LayerIndex}: {tokens} tokens do not fit the {rows} rows a rank the ranks agreed to exchange.");
        var (world, k, hiddenSize, device) = (Placement.RankCount, ids.shape[1], hidden.shape[1], hidden.device);
        using var scope = NewDisposeScope();
        var destination = Tables.DestinationRanks(ids, tokensPerExpert);
        if (tokens < rows)
        {
            var padding = rows - tokens;
            hidden = cat([hidden, zeros([padding, hiddenSize], hidden.dtype, device)], 0);
            ids = cat([ids, full([padding, k], HeldScalars.MinusOne, ScalarType.Int64, device)], 0);
            weights = cat([weights, zeros([padding, k], weights.dtype, device)], 0);
            destination = cat([destination, full([padding, k], HeldScalars.MinusOne, ScalarType.Int64, device)], 0);
        }
        var elsewhere = destination.unsqueeze(0).expand(world, rows, k).ne(HeldScalars.Range(world, device).view(world, 1, 1));
        var sendIds = ids.unsqueeze(0).expand(world, rows, k).masked_fill(elsewhere, HeldScalars.MinusOne).reshape(world * rows, k);
        var sendWeights = weights.to(ScalarType.Float32).unsqueeze(0).expand(world, rows, k).masked_fill(elsewhere, HeldScalars.ZeroReal).reshape(world * rows, k);
        var sendHidden = hidden.unsqueeze(0).expand(world, rows, hiddenSize).reshape(world * rows, hiddenSize);
        var back = lockstep.ExchangeFixed(LayerIndex, sendHidden, sendIds, sendWeights,
            received => ComputeHeld(received.Hidden, received.ExpertIds, received.Weights.to(received.Hidden.dtype)));
        return back.view(world, rows, hiddenSize).sum([0L]).narrow(0, 0, tokens).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// This layer's fixed-capacity exchange with no tokens of this rank's own (a rank without work in its peers'
    /// forward): it sends only padding and computes what its peers send.
    /// </summary>
    internal Tensor JoinFixed(ScalarType dtype)
    {
        if (Transport is not LockstepExpertTransport { FixedRows: { } rows } lockstep)
            throw new InvalidOperationException("Only a lockstep transport's fixed-capacity forward is joined without tokens.");
        var device = _experts.GateUp.device;
        var k = _experts.ExpertsPerToken;
        return ForwardFixed(lockstep, rows, empty([0, _experts.HiddenSize], dtype, device), empty([0, k], ScalarType.Int64, device),
            empty([0, k], dtype, device), zeros([_experts.ExpertCount], ScalarType.Int64, device));
    }

    /// <summary>
    /// What a peer asks of this rank: the weighted sum of the picks of <paramref name="batch"/>, all of
    /// experts held here under the placement <paramref name="version"/> the peer routed by: the one in
    /// force (null: that one), or the one held beside it (<see cref="AnswerBeside"/>).
    /// </summary>
    /// <returns><c>[rows of the batch, hidden]</c>.</returns>
    /// <exception cref="InvalidOperationException">This rank holds no experts of that version, or not those the batch names.</exception>
    public Tensor ComputeHeld(ExpertBatch batch, long? version = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var (tables, held, local) = version is null || version == Version ? (Tables, _experts.HeldExperts.Count, (LocalExperts?)null)
            : _beside is { } beside && beside.Experts.Version == version ? (beside.Tables, beside.Experts.Placement.ExpertsOn(Rank).Count, beside.Local)
            : throw new InvalidOperationException($"Rank {Rank} runs placement {Version}{(_beside is { } other ? $" (and answers for {other.Experts.Version})" : "")}, it was sent layer {LayerIndex} for placement {version}.");
        var slots = tables.SlotsOf(batch.ExpertIds);
        using var heldCount = held.ToScalar();
        if (slots.eq(heldCount).logical_and(batch.ExpertIds.ge(HeldScalars.Zero)).any().item<bool>())
            throw new InvalidOperationException($"Rank {Rank} was sent layer {LayerIndex} tokens of an expert it does not hold; the ranks disagree on the placement.");
        return Compute(tables, held, local, batch.Hidden, batch.ExpertIds, batch.Weights).MoveToOuterDisposeScope();
    }

    /// <summary>The held experts' share; picks with id −1 or of experts held elsewhere are skipped.</summary>
    private Tensor ComputeHeld(Tensor hidden, Tensor ids, Tensor weights) => Compute(Tables, _experts.HeldExperts.Count, null, hidden, ids, weights);

    /// <summary>The share of the experts <paramref name="tables"/> map to slots: the layer's own (<paramref name="local"/> null) or those beside them.</summary>
    private Tensor Compute(RouteTables tables, int held, LocalExperts? local, Tensor hidden, Tensor ids, Tensor weights)
    {
        var slots = tables.SlotsOf(ids);
        var flat = slots.reshape(-1);
        var perSlot = zeros([held + 1], ScalarType.Int64, hidden.device).scatter_add_(0, flat, ones_like(flat)).narrow(0, 0, held);
        return local is null
            ? _experts.ComputeSlots(hidden, slots, weights, perSlot)
            : local.Compute(new RoutedTokens(LayerIndex, hidden, slots, weights, perSlot));
    }

    /// <summary>
    /// From now on peers' batches routed by <paramref name="experts"/>' placement version are computed
    /// with them (null: only the placement in force). The caller keeps owning them and calls this with
    /// null, or with others, before disposing them. On the thread that owns the model.
    /// </summary>
    internal void AnswerBeside(StagedExperts? experts)
    {
        if (experts is not null && experts.LayerIndex != LayerIndex)
            throw new ArgumentException($"Experts of layer {experts.LayerIndex} cannot answer for layer {LayerIndex}.", nameof(experts));
        var before = _beside;
        if (experts is null) _beside = null;
        else
        {
            var (gateUp, down) = experts.Stacks;
            _beside = (experts, RouteTables.Build(experts.Placement, experts.Placement.ExpertsOn(Rank), gateUp.device), new LocalExperts(gateUp, down, _experts.IntermediateSize));
        }
        before?.Tables.Dispose();
    }

    /// <summary>
    /// The experts this rank holds under <paramref name="next"/>, allocated beside the ones it holds
    /// now, which stay in force: those of <paramref name="move"/>'s Keep copied from their slots, those
    /// of its Load read by <paramref name="read"/> (checkpoint name relative to the layer's experts,
    /// e.g. <c>5.gate_proj.weight</c>, and shape → a tensor the caller owns). Nothing changes until
    /// <see cref="Switch"/>; disposing the result instead abandons it.
    /// </summary>
    internal StagedExperts Stage(LayerPlacement next, long version, LayerMove move, Func<string, long[], Tensor> read)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(move);
        ArgumentNullException.ThrowIfNull(read);
        if (!_experts.IsMaterialised) throw new InvalidOperationException("The experts are not materialised yet.");
        if (_experts.Fp8 is not null) throw new NotSupportedException($"Layer {LayerIndex}: FP8-resident experts are not moved between ranks yet; serve them without rebalancing.");
        var (expertCount, inter, hiddenSize) = (_experts.ExpertCount, _experts.IntermediateSize, _experts.HiddenSize);
        if (next.LayerIndex != LayerIndex || next.ExpertCount != expertCount || next.RankCount != Placement.RankCount)
            throw new ArgumentException($"The placement is for layer {next.LayerIndex} with {next.ExpertCount} experts on {next.RankCount} ranks, not layer {LayerIndex} with {expertCount} on {Placement.RankCount}.", nameof(next));
        var held = next.ExpertsOn(Rank);
        var current = _experts.HeldExperts;
        if (!held.Order().SequenceEqual(move.Load.Concat(move.Keep).Order()) || move.Keep.Except(current).Any())
            throw new ArgumentException($"Layer {LayerIndex}: the move (load [{string.Join(", ", move.Load)}], keep [{string.Join(", ", move.Keep)}]) does not lead from the experts held here to rank {Rank}'s of the placement.", nameof(move));
        var (currentGateUp, currentDown) = (_experts.GateUp, _experts.Down);
        var device = currentGateUp.device;
        var gateUp = empty([held.Count, 2 * inter, hiddenSize], currentGateUp.dtype, device).DetachFromDisposeScope();
        var down = empty([held.Count, hiddenSize, inter], currentDown.dtype, device).DetachFromDisposeScope();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            for (var slot = 0; slot < held.Count; slot++)
            {
                var expert = held[slot];
                var kept = IndexOf(current, expert);
                if (kept >= 0)
                {
                    gateUp[slot].copy_(currentGateUp[kept]);
                    down[slot].copy_(currentDown[kept]);
                    continue;
                }
                var name = expert.ToString(CultureInfo.InvariantCulture);
                gateUp[slot].narrow(0, 0, inter).copy_(read($"{name}.gate_proj.weight", [inter, hiddenSize]));
                gateUp[slot].narrow(0, inter, inter).copy_(read($"{name}.up_proj.weight", [inter, hiddenSize]));
                down[slot].copy_(read($"{name}.down_proj.weight", [hiddenSize, inter]));
            }
        }
        catch
        {
            gateUp.Dispose();
            down.Dispose();
            throw;
        }
        return new StagedExperts(LayerIndex, next, version, gateUp, down);
    }

    /// <summary>
    /// Puts <paramref name="staged"/> in force under its placement version. The experts held before are
    /// freed, or with <paramref name="retire"/> returned, still answering peers that route by the
    /// placement they belong to (<see cref="AnswerBeside"/>), until their owner, the caller, frees them.
    /// Runs between steps on the thread that owns the model: nothing may be computing with the old stacks.
    /// </summary>
    internal StagedExperts? Switch(StagedExperts staged, bool retire = false)
    {
        ArgumentNullException.ThrowIfNull(staged);
        if (staged.LayerIndex != LayerIndex) throw new ArgumentException($"Experts staged for layer {staged.LayerIndex} cannot go to layer {LayerIndex}.", nameof(staged));
        var device = _experts.GateUp.device;
        var held = staged.Placement.ExpertsOn(Rank);
        var tables = RouteTables.Build(staged.Placement, held, device);
        // The old stacks outlive the layer's parameters through their own handles.
        var retired = retire
            ? new StagedExperts(LayerIndex, Placement, Version, _experts.GateUp.alias().DetachFromDisposeScope(), _experts.Down.alias().DetachFromDisposeScope())
            : null;
        var (gateUp, down) = staged.Take();
        _experts.Adopt(held, gateUp, down);
        var before = _tables;
        (Placement, Version, _tables) = (staged.Placement, staged.Version, tables);
        before?.Dispose();
        AnswerBeside(retired);
        return retired;
    }

    private static int IndexOf(IReadOnlyList<int> experts, int expert)
    {
        for (var i = 0; i < experts.Count; i++)
            if (experts[i] == expert) return i;
        return -1;
    }

    public void Dispose()
    {
        _tables?.Dispose();
        _tables = null;
        AnswerBeside(null);
    }

    /// <summary>This rank's view of a layer's placement: the lookup tables the routing needs on the device.</summary>
    private sealed class RouteTables : IDisposable
    {
        private readonly Tensor _slotOfExpert;
        private readonly Tensor _copyRanks;
        private readonly Tensor _copyCounts;
        private readonly int _maxCopies;

        private RouteTables(Tensor slotOfExpert, Tensor copyRanks, Tensor copyCounts, int maxCopies)
        {
            (_slotOfExpert, _copyRanks, _copyCounts, _maxCopies) = (slotOfExpert, copyRanks, copyCounts, maxCopies);
        }

        /// <param name="placement">The layer's placement.</param>
        /// <param name="held">The experts this rank holds under it, by slot.</param>
        /// <param name="device">Where the layer computes.</param>
        public static RouteTables Build(LayerPlacement placement, IReadOnlyList<int> held, Device device)
        {
            // Index id + 1: entry 0 is id −1 (a pick for another rank); experts not held map to the sentinel slot.
            var slotOfExpert = Enumerable.Repeat((long)held.Count, placement.ExpertCount + 1).ToArray();
            for (var slot = 0; slot < held.Count; slot++) slotOfExpert[held[slot] + 1] = slot;
            var maxCopies = Enumerable.Range(0, placement.ExpertCount).Max(e => placement.RanksOf(e).Count);
            var copyRanks = new long[placement.ExpertCount * maxCopies];
            var copyCounts = new long[placement.ExpertCount];
            for (var expert = 0; expert < placement.ExpertCount; expert++)
            {
                var ranks = placement.RanksOf(expert);
                copyCounts[expert] = ranks.Count;
                for (var copy = 0; copy < maxCopies; copy++) copyRanks[(expert * maxCopies) + copy] = ranks[copy % ranks.Count];
            }
            return new RouteTables(tensor(slotOfExpert, device: device).DetachFromDisposeScope(), tensor(copyRanks, device: device).DetachFromDisposeScope(),
                tensor(copyCounts, device: device).DetachFromDisposeScope(), maxCopies);
        }

        /// <summary>The slot of each pick's expert in the held stacks; the sentinel (held count) for id −1 and experts held elsewhere.</summary>
        public Tensor SlotsOf(Tensor ids) => _slotOfExpert.index_select(0, ids.Plus(HeldScalars.One).reshape(-1)).view_as(ids);

        /// <summary>
        /// The rank computing each pick <c>[T, k]</c>: the i-th pick of expert e in batch order goes to
        /// its copy <c>i mod copies(e)</c>, so copies split an expert's picks as evenly as integers
        /// allow, exactly as <see cref="LayerPlacement.TokensPerRank"/> counts them.
        /// </summary>
        public Tensor DestinationRanks(Tensor ids, Tensor tokensPerExpert)
        {
            var flat = ids.reshape(-1);
            if (_maxCopies == 1) return _copyRanks.index_select(0, flat).view_as(ids);
            var (sorted, order) = flat.sort(0, descending: false, stable: true);
            var firstPick = tokensPerExpert.cumsum(0) - tokensPerExpert;
            var indexInExpert = HeldScalars.Range(flat.shape[0], flat.device) - firstPick.index_select(0, sorted);
            var pickIndex = empty_like(flat).index_copy_(0, order, indexInExpert);
            var copy = pickIndex.remainder(_copyCounts.index_select(0, flat));
            using var maxCopies = _maxCopies.ToScalar();
            return _copyRanks.index_select(0, (flat * maxCopies).Plus(copy)).view_as(ids);
        }

        public void Dispose()
        {
            _slotOfExpert.Dispose();
            _copyRanks.Dispose();
            _copyCounts.Dispose();
        }
    }
}
