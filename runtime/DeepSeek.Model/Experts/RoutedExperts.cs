using System.Globalization;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// The routed experts of one MoE layer (<c>mlp.experts</c>) as this process sees them. The experts
/// held here are stored stacked so a few batched matrix products compute them: <c>gate_up_proj</c>
/// <c>[held, 2·inter, hidden]</c> (each expert's gate rows, then its up rows) and <c>down_proj</c>
/// <c>[held, hidden, inter]</c>; slot <c>j</c> holds expert <see cref="HeldExperts"/>[j].
/// <para>
/// Built, it holds every expert. The placement pass (<see cref="ExpertParallelism"/>) may shard it
/// before materialisation: then it holds one rank's experts only, computes the picks of experts it
/// holds, and hands the picks of the others to an <see cref="IExpertTransport"/>, a copy of a
/// replicated expert taking every n-th of that expert's picks.
/// </para>
/// </summary>
public sealed class RoutedExperts : WeightedModule
{
    private Parameter gate_up_proj;
    private Parameter down_proj;
    private Shard? _shard;
    private LocalExperts? _local;
    private Int4Experts? _int4;
    private Parameter? gate_up_proj_scale_inv;
    private Parameter? down_proj_scale_inv;
    private Fp8BlockQuantization? _fp8;

    public RoutedExperts(string name, int layerIndex, int expertCount, int expertsPerToken, long hiddenSize, long intermediateSize, ScalarType dtype) : base(name)
    {
        LayerIndex = layerIndex;
        ExpertCount = expertCount;
        ExpertsPerToken = expertsPerToken;
        HiddenSize = hiddenSize;
        IntermediateSize = intermediateSize;
        HeldExperts = [.. Enumerable.Range(0, expertCount)];
        ComputeDType = dtype;
        gate_up_proj = Declare(dtype, expertCount, 2 * intermediateSize, hiddenSize);
        down_proj = Declare(dtype, expertCount, hiddenSize, intermediateSize);
        RegisterComponents();
    }

    public int LayerIndex { get; }

    /// <summary>The dtype the experts compute in (their stacks' unless FP8-resident, which hold bytes).</summary>
    public ScalarType ComputeDType { get; }

    /// <summary>
    /// The block layout of FP8-resident stacks (<see cref="DeclareFp8"/>, <see cref="QuantizeFp8"/>): then
    /// <see cref="GateUp"/> and <see cref="Down"/> hold E4M3 bytes and <see cref="GateUpScaleInv"/>,
    /// <see cref="DownScaleInv"/> their block scales, gate's blocks before up's.
    /// </summary>
    public Fp8BlockQuantization? Fp8 => _fp8;

    /// <summary><c>[held, 2·⌈inter/rows⌉, ⌈hidden/columns⌉]</c> when FP8-resident.</summary>
    public Tensor? GateUpScaleInv => gate_up_proj_scale_inv;

    /// <summary><c>[held, ⌈hidden/rows⌉, ⌈inter/columns⌉]</c> when FP8-resident.</summary>
    public Tensor? DownScaleInv => down_proj_scale_inv;

    /// <summary>
    /// Declares the stacks as the checkpoint's FP8 bytes with per-expert block scales (a pass before
    /// materialising, after any placement), so loading copies each expert's bytes as they are.
    /// </summary>
    public void DeclareFp8(Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (_fp8 is not null) throw new InvalidOperationException($"Layer {LayerIndex}'s experts are already FP8.");
        gate_up_proj = Redeclared(nameof(gate_up_proj), gate_up_proj, ScalarType.Byte, gate_up_proj.shape);
        down_proj = Redeclared(nameof(down_proj), down_proj, ScalarType.Byte, down_proj.shape);
        _fp8 = blocks;
        DeclareScales(HeldExperts.Count);
    }

    /// <summary>The block-scale stacks of <paramref name="held"/> FP8 experts, declared.</summary>
    private void DeclareScales(int held)
    {
        var blocks = _fp8!;
        var gate = Fp8BlockWeights.ScaleShape([IntermediateSize, HiddenSize], blocks);
        var down = Fp8BlockWeights.ScaleShape([HiddenSize, IntermediateSize], blocks);
        gate_up_proj_scale_inv?.Dispose();
        down_proj_scale_inv?.Dispose();
        gate_up_proj_scale_inv = Declare(ScalarType.Float32, held, 2 * gate[0], gate[1]);
        down_proj_scale_inv = Declare(ScalarType.Float32, held, down[0], down[1]);
        ConditionallyRegisterParameter(nameof(gate_up_proj_scale_inv), gate_up_proj_scale_inv);
        ConditionallyRegisterParameter(nameof(down_proj_scale_inv), down_proj_scale_inv);
    }

    /// <summary>
    /// Quantises the loaded stacks to FP8 blocks expert by expert (gate, up and down each their own
    /// grid, as a published checkpoint stores them) and frees them.
    /// </summary>
    public void QuantizeFp8(Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (IsDeclared(gate_up_proj)) throw new InvalidOperationException("Quantise after the weights are loaded.");
        if (_fp8 is not null || _int4 is not null) throw new InvalidOperationException($"Layer {LayerIndex}'s experts are already quantised.");
        using var noGrad = no_grad();
        var device = gate_up_proj.device;
        var held = HeldExperts.Count;
        var gate = Fp8BlockWeights.ScaleShape([IntermediateSize, HiddenSize], blocks);
        var downGrid = Fp8BlockWeights.ScaleShape([HiddenSize, IntermediateSize], blocks);
        var gateUpBytes = empty(gate_up_proj.shape, ScalarType.Byte, device).DetachFromDisposeScope();
        var downBytes = empty(down_proj.shape, ScalarType.Byte, device).DetachFromDisposeScope();
        var gateUpScales = empty([held, 2 * gate[0], gate[1]], ScalarType.Float32, device).DetachFromDisposeScope();
        var downScales = empty([held, downGrid[0], downGrid[1]], ScalarType.Float32, device).DetachFromDisposeScope();
        for (var slot = 0; slot < held; slot++)
        {
            using var scope = NewDisposeScope();
            foreach (var (rows, scaleRows) in new[] { (0L, 0L), (IntermediateSize, gate[0]) })
            {
                var (bytes, scaleInv) = Fp8BlockWeights.Quantize(gate_up_proj[slot].narrow(0, rows, IntermediateSize), blocks);
                gateUpBytes[slot].narrow(0, rows, IntermediateSize).copy_(bytes);
                gateUpScales[slot].narrow(0, scaleRows, gate[0]).copy_(scaleInv);
            }
            var (downQuantised, downScaleInv) = Fp8BlockWeights.Quantize(down_proj[slot], blocks);
            downBytes[slot].copy_(downQuantised);
            downScales[slot].copy_(downScaleInv);
        }
        gate_up_proj = Replaced(nameof(gate_up_proj), gate_up_proj, gateUpBytes);
        down_proj = Replaced(nameof(down_proj), down_proj, downBytes);
        gate_up_proj_scale_inv = new Parameter(gateUpScales, requires_grad: false);
        down_proj_scale_inv = new Parameter(downScales, requires_grad: false);
        ConditionallyRegisterParameter(nameof(gate_up_proj_scale_inv), gate_up_proj_scale_inv);
        ConditionallyRegisterParameter(nameof(down_proj_scale_inv), down_proj_scale_inv);
        _fp8 = blocks;
        _local = new LocalExperts(this);
    }

    /// <summary>Routed experts of the layer (<c>n_routed_experts</c>), held here or not.</summary>
    public int ExpertCount { get; }

    public int ExpertsPerToken { get; }

    public long HiddenSize { get; }

    public long IntermediateSize { get; }

    /// <summary>Global expert id of each slot, ascending.</summary>
    public IReadOnlyList<int> HeldExperts { get; private set; }

    /// <summary>True once a placement over several ranks was applied: some picks are computed elsewhere.</summary>
    public bool IsSharded => _shard is not null;

    /// <summary>
    /// Routed picks per shard of this layer: per rank of the placement when sharded (what the
    /// group's imbalance is about), else per expert.
    /// </summary>
    public long[] TokensPerShard(long[] tokensPerExpert) => _shard?.Placement.TokensPerRank(tokensPerExpert) ?? tokensPerExpert;

    /// <summary>The layer's placement in force, when sharded.</summary>
    public LayerPlacement? Placement => _shard?.Placement;

    /// <summary>The version of the placement in force (what every dispatch of this layer carries); the initial one when not sharded.</summary>
    public long PlacementVersion => _shard?.Version ?? ExpertPlacement.InitialVersion;

    /// <summary>What carries the picks of other ranks' experts; null while the layer is not sharded.</summary>
    internal IExpertTransport? Transport => _shard?.Transport;

    /// <summary><c>[held, 2·inter, hidden]</c>: gate rows <c>[0, inter)</c>, up rows <c>[inter, 2·inter)</c>.</summary>
    public Tensor GateUp => gate_up_proj;

    /// <summary><c>[held, hidden, inter]</c>.</summary>
    public Tensor Down => down_proj;

    /// <summary>
    /// The compute path over the held experts; exists once materialised. Set by the passes that change
    /// how the experts are held or computed, and by tests that run a path on the CPU.
    /// </summary>
    public LocalExperts Local
    {
        get => _local ?? throw new InvalidOperationException("The experts are not materialised yet.");
        internal set => _local = value;
    }

    /// <summary>
    /// Keeps only <paramref name="rank"/>'s experts of <paramref name="placement"/> (still declared,
    /// so the others are never allocated) and sends the picks of the others through <paramref name="transport"/>.
    /// </summary>
    internal void ApplyPlacement(LayerPlacement placement, long version, int rank, IExpertTransport transport)
    {
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(transport);
        if (_shard is not null) throw new InvalidOperationException($"Layer {LayerIndex} is already sharded.");
        if (placement.LayerIndex != LayerIndex || placement.ExpertCount != ExpertCount)
            throw new ArgumentException($"The placement is for layer {placement.LayerIndex} with {placement.ExpertCount} experts, not layer {LayerIndex} with {ExpertCount}.", nameof(placement));
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, placement.RankCount);
        var held = placement.ExpertsOn(rank);
        gate_up_proj = Redeclared(nameof(gate_up_proj), gate_up_proj, held.Count, 2 * IntermediateSize, HiddenSize);
        down_proj = Redeclared(nameof(down_proj), down_proj, held.Count, HiddenSize, IntermediateSize);
        if (_fp8 is not null) DeclareScales(held.Count);
        HeldExperts = held;
        _shard = new Shard(placement, version, rank, transport);
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
        var shard = _shard ?? throw new InvalidOperationException($"Layer {LayerIndex} is not sharded; only a sharded layer changes placement.");
        if (_local is null) throw new InvalidOperationException("The experts are not materialised yet.");
        if (_fp8 is not null) throw new NotSupportedException($"Layer {LayerIndex}: FP8-resident experts are not moved between ranks yet; serve them without rebalancing.");
        if (next.LayerIndex != LayerIndex || next.ExpertCount != ExpertCount || next.RankCount != shard.Placement.RankCount)
            throw new ArgumentException($"The placement is for layer {next.LayerIndex} with {next.ExpertCount} experts on {next.RankCount} ranks, not layer {LayerIndex} with {ExpertCount} on {shard.Placement.RankCount}.", nameof(next));
        var held = next.ExpertsOn(shard.Rank);
        if (!held.Order().SequenceEqual(move.Load.Concat(move.Keep).Order()) || move.Keep.Except(HeldExperts).Any())
            throw new ArgumentException($"Layer {LayerIndex}: the move (load [{string.Join(", ", move.Load)}], keep [{string.Join(", ", move.Keep)}]) does not lead from the experts held here to rank {shard.Rank}'s of the placement.", nameof(move));
        var device = gate_up_proj.device;
        var gateUp = empty([held.Count, 2 * IntermediateSize, HiddenSize], gate_up_proj.dtype, device).DetachFromDisposeScope();
        var down = empty([held.Count, HiddenSize, IntermediateSize], down_proj.dtype, device).DetachFromDisposeScope();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            for (var slot = 0; slot < held.Count; slot++)
            {
                var expert = held[slot];
                var kept = IndexOf(HeldExperts, expert);
                if (kept >= 0)
                {
                    gateUp[slot].copy_(gate_up_proj[kept]);
                    down[slot].copy_(down_proj[kept]);
                    continue;
                }
                var name = expert.ToString(CultureInfo.InvariantCulture);
                gateUp[slot].narrow(0, 0, IntermediateSize).copy_(read($"{name}.gate_proj.weight", [IntermediateSize, HiddenSize]));
                gateUp[slot].narrow(0, IntermediateSize, IntermediateSize).copy_(read($"{name}.up_proj.weight", [IntermediateSize, HiddenSize]));
                down[slot].copy_(read($"{name}.down_proj.weight", [HiddenSize, IntermediateSize]));
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
    /// Puts <paramref name="staged"/> in force under its placement version and frees the experts held
    /// before. Runs between steps on the thread that owns the model: nothing may be computing with the
    /// old stacks.
    /// </summary>
    internal void Switch(StagedExperts staged)
    {
        ArgumentNullException.ThrowIfNull(staged);
        var shard = _shard ?? throw new InvalidOperationException($"Layer {LayerIndex} is not sharded; only a sharded layer changes placement.");
        if (staged.LayerIndex != LayerIndex) throw new ArgumentException($"Experts staged for layer {staged.LayerIndex} cannot go to layer {LayerIndex}.", nameof(staged));
        var (gateUp, down) = staged.Take();
        var device = gate_up_proj.device;
        var next = new Shard(staged.Placement, staged.Version, shard.Rank, shard.Transport);
        HeldExperts = staged.Placement.ExpertsOn(shard.Rank);
        next.Allocate(HeldExperts, device);
        gate_up_proj = Replaced(nameof(gate_up_proj), gate_up_proj, gateUp);
        down_proj = Replaced(nameof(down_proj), down_proj, down);
        _shard = next;
        _local = new LocalExperts(this);
        shard.Dispose();
    }

    private static int IndexOf(IReadOnlyList<int> experts, int expert)
    {
        for (var i = 0; i < experts.Count; i++)
            if (experts[i] == expert) return i;
        return -1;
    }

    /// <summary>Bytes the held experts take on the device (the stacks, or their int4 weights once quantised).</summary>
    public long ResidentBytes =>
        (gate_up_proj.numel() * gate_up_proj.element_size()) + (down_proj.numel() * down_proj.element_size())
        + ((gate_up_proj_scale_inv?.numel() ?? 0) * sizeof(float)) + ((down_proj_scale_inv?.numel() ?? 0) * sizeof(float))
        + (_int4?.Bytes ?? 0);

    /// <summary>
    /// Quantises the loaded experts to int4 stacks with <paramref name="groupSize"/> (<see cref="Int4Experts"/>:
    /// small batches by the native <paramref name="helper"/>'s fused kernel on the GPU, the rest by the
    /// Sorted path dequantising each active expert) and frees the bf16 stacks. Returns why the layer
    /// stays unquantised, or null.
    /// </summary>
    internal string? QuantizeInt4(int groupSize, NativeHelper? helper)
    {
        if (IsDeclared(gate_up_proj)) throw new InvalidOperationException("Quantise after the weights are loaded.");
        if (_int4 is not null || _fp8 is not null) throw new InvalidOperationException($"Layer {LayerIndex}'s experts are already quantised.");
        if (Int4Experts.Unsupported(HiddenSize, IntermediateSize, groupSize, kernel: helper is not null) is { } reason) return reason;
        using var noGrad = no_grad();
        var weights = Int4Experts.Quantize(gate_up_proj, down_proj, groupSize, helper);
        var device = gate_up_proj.device;
        gate_up_proj = Replaced(nameof(gate_up_proj), gate_up_proj, device);
        down_proj = Replaced(nameof(down_proj), down_proj, device);
        _int4 = weights;
        _local = new LocalExperts(this, weights);
        return null;
    }

    /// <summary>
    /// Computes every batch with the native helper's grouped GEMM where it applies (bf16 stacks on
    /// CUDA holding every expert; see <see cref="LocalExperts.SyncFreeTokens"/>); int4 experts keep their own kernel.
    /// </summary>
    internal void UseGroupedKernel(NativeHelper helper)
    {
        ArgumentNullException.ThrowIfNull(helper);
        if (_local is null) throw new InvalidOperationException("The experts are not materialised yet.");
        if (_int4 is null) _local = new LocalExperts(this, kernel: helper);
    }

    /// <summary>
    /// Tokens up to which a batch of this layer runs without a host synchronisation (<see cref="LocalExperts.SyncFreeTokens"/>);
    /// none when sharded, since the picks of experts held elsewhere are exchanged through the host.
    /// </summary>
    public long SyncFreeTokens => IsSharded ? 0 : Local.SyncFreeTokens;

    /// <summary>An empty stack in place of one whose experts are now held as int4.</summary>
    private Parameter Replaced(string name, Parameter stack, Device device)
    {
        var replacement = new Parameter(empty([0, stack.shape[1], stack.shape[2]], stack.dtype, device), requires_grad: false);
        replacement.DetachFromDisposeScope();
        ConditionallyRegisterParameter(name, replacement);
        stack.Dispose();
        return replacement;
    }

    internal override void Allocate(Device device)
    {
        gate_up_proj = Allocated(nameof(gate_up_proj), gate_up_proj, device);
        down_proj = Allocated(nameof(down_proj), down_proj, device);
        if (gate_up_proj_scale_inv is not null) gate_up_proj_scale_inv = Allocated(nameof(gate_up_proj_scale_inv), gate_up_proj_scale_inv, device);
        if (down_proj_scale_inv is not null) down_proj_scale_inv = Allocated(nameof(down_proj_scale_inv), down_proj_scale_inv, device);
        _local = new LocalExperts(this);
        _shard?.Allocate(HeldExperts, device);
    }

    /// <summary>
    /// Where each per-expert checkpoint tensor goes: views into the stacks named as the checkpoint
    /// names them (<c>{prefix}.{expert}.gate_proj.weight</c> …), so loading copies each held expert
    /// into its slice and a missing or misshapen tensor is reported by its own name.
    /// </summary>
    public IEnumerable<(string Name, Tensor Target)> CheckpointSlices(string prefix)
    {
        for (var slot = 0; slot < HeldExperts.Count; slot++)
        {
            var expert = $"{prefix}.{HeldExperts[slot].ToString(CultureInfo.InvariantCulture)}";
            yield return ($"{expert}.gate_proj.weight", gate_up_proj[slot].narrow(0, 0, IntermediateSize));
            yield return ($"{expert}.up_proj.weight", gate_up_proj[slot].narrow(0, IntermediateSize, IntermediateSize));
            yield return ($"{expert}.down_proj.weight", down_proj[slot]);
            if (_fp8 is null) continue;
            var gateBlocks = gate_up_proj_scale_inv!.shape[1] / 2;
            yield return ($"{expert}.gate_proj.weight{Fp8BlockQuantization.ScaleSuffix}", gate_up_proj_scale_inv[slot].narrow(0, 0, gateBlocks));
            yield return ($"{expert}.up_proj.weight{Fp8BlockQuantization.ScaleSuffix}", gate_up_proj_scale_inv[slot].narrow(0, gateBlocks, gateBlocks));
            yield return ($"{expert}.down_proj.weight{Fp8BlockQuantization.ScaleSuffix}", down_proj_scale_inv![slot]);
        }
    }

    /// <summary>
    /// Called before the layer's attention with the batch's token count: the held experts may start
    /// preparing their weights for it (<see cref="LocalExperts.DequantizeAhead"/>). Only a hint; a sharded
    /// layer computes its peers' rows too, and one that takes another path drops what was prepared.
    /// </summary>
    public void PrepareFor(long tokens) => _local?.DequantizeAhead(tokens);

    /// <summary>
    /// <c>Σ_k weights[t,k] · expert_{ids[t,k]}(hidden[t])</c> for every token, wherever the experts live.
    /// </summary>
    /// <param name="hidden"><c>[T, hidden]</c>.</param>
    /// <param name="ids">Global expert ids <c>[T, k]</c>.</param>
    /// <param name="weights"><c>[T, k]</c>, in the dtype of <paramref name="hidden"/>.</param>
    /// <param name="tokensPerExpert">Picks per expert <c>[n_routed_experts]</c> on the device.</param>
    public Tensor Forward(Tensor hidden, Tensor ids, Tensor weights, Tensor tokensPerExpert)
    {
        if (_shard is null) return Local.Compute(new RoutedTokens(LayerIndex, hidden, ids, weights, tokensPerExpert));

        var destination = _shard.DestinationRanks(ids, tokensPerExpert);
        var batches = new List<ExpertBatch>();
        var rowsOfBatch = new List<Tensor>();
        for (var rank = 0; rank < _shard.Placement.RankCount; rank++)
        {
            if (rank == _shard.Rank) continue;
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
        var pending = _shard.Transport.Dispatch(LayerIndex, _shard.Version, batches);
        using var ownRank = _shard.Rank.ToScalar();
        var output = ComputeHeld(hidden, ids.masked_fill(destination.ne(ownRank), HeldScalars.MinusOne), weights);
        var results = pending.Combine();
        if (results.Count != batches.Count)
            throw new InvalidOperationException($"Layer {LayerIndex}: the expert transport returned {results.Count} results for {batches.Count} batches.");
        for (var i = 0; i < results.Count; i++)
        {
            if (results[i].shape is not [var rows, var size] || rows != rowsOfBatch[i].shape[0] || size != HiddenSize)
                throw new ExpertTransportException($"Layer {LayerIndex}: rank {batches[i].Rank} answered [{string.Join(", ", results[i].shape)}] for {rowsOfBatch[i].shape[0]} rows of {HiddenSize}.");
            output.index_add_(0, rowsOfBatch[i], results[i].to(output.dtype, output.device), HeldScalars.One);
        }
        return output;
    }

    /// <summary>What a peer asks of this rank: the weighted sum of the picks of <paramref name="batch"/>, all of experts held here.</summary>
    /// <returns><c>[rows of the batch, hidden]</c>.</returns>
    public Tensor ComputeHeld(ExpertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var slots = _shard?.SlotsOf(batch.ExpertIds);
        using var heldCount = HeldExperts.Count.ToScalar();
        if (slots is not null && slots.eq(heldCount).logical_and(batch.ExpertIds.ge(HeldScalars.Zero)).any().item<bool>())
            throw new InvalidOperationException($"Rank {_shard!.Rank} was sent layer {LayerIndex} tokens of an expert it does not hold; the ranks disagree on the placement.");
        return ComputeHeld(batch.Hidden, batch.ExpertIds, batch.Weights).MoveToOuterDisposeScope();
    }

    /// <summary>The held experts' share; picks with id −1 or of experts held elsewhere are skipped.</summary>
    private Tensor ComputeHeld(Tensor hidden, Tensor ids, Tensor weights)
    {
        if (_shard is null) throw new InvalidOperationException("Only a sharded layer computes a share of its picks.");
        var slots = _shard.SlotsOf(ids);
        var flat = slots.reshape(-1);
        var held = HeldExperts.Count;
        var perSlot = zeros([held + 1], ScalarType.Int64, hidden.device).scatter_add_(0, flat, ones_like(flat)).narrow(0, 0, held);
        return Local.Compute(new RoutedTokens(LayerIndex, hidden, slots, weights, perSlot));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _shard?.Dispose();
            _int4?.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>This rank's view of a layer's placement, with the lookup tables the routing needs on the device.</summary>
    private sealed class Shard(LayerPlacement placement, long version, int rank, IExpertTransport transport) : IDisposable
    {
        private Tensor? _slotOfExpert;
        private Tensor? _copyRanks;
        private Tensor? _copyCounts;
        private int _maxCopies;

        public LayerPlacement Placement { get; } = placement;

        public long Version { get; } = version;

        public int Rank { get; } = rank;

        public IExpertTransport Transport { get; } = transport;

        public void Allocate(IReadOnlyList<int> held, Device device)
        {
            // Index id + 1: entry 0 is id −1 (a pick for another rank); experts not held map to the sentinel slot.
            var slotOfExpert = Enumerable.Repeat((long)held.Count, Placement.ExpertCount + 1).ToArray();
            for (var slot = 0; slot < held.Count; slot++) slotOfExpert[held[slot] + 1] = slot;
            _maxCopies = Enumerable.Range(0, Placement.ExpertCount).Max(e => Placement.RanksOf(e).Count);
            var copyRanks = new long[Placement.ExpertCount * _maxCopies];
            var copyCounts = new long[Placement.ExpertCount];
            for (var expert = 0; expert < Placement.ExpertCount; expert++)
            {
                var ranks = Placement.RanksOf(expert);
                copyCounts[expert] = ranks.Count;
                for (var copy = 0; copy < _maxCopies; copy++) copyRanks[(expert * _maxCopies) + copy] = ranks[copy % ranks.Count];
            }
            _slotOfExpert = tensor(slotOfExpert, device: device).DetachFromDisposeScope();
            _copyRanks = tensor(copyRanks, device: device).DetachFromDisposeScope();
            _copyCounts = tensor(copyCounts, device: device).DetachFromDisposeScope();
        }

        public Tensor SlotsOf(Tensor ids) => Table(_slotOfExpert).index_select(0, ids.Plus(HeldScalars.One).reshape(-1)).view_as(ids);

        /// <summary>
        /// The rank computing each pick <c>[T, k]</c>: the i-th pick of expert e in batch order goes to
        /// its copy <c>i mod copies(e)</c>, so copies split an expert's picks as evenly as integers
        /// allow, exactly as <see cref="LayerPlacement.TokensPerRank"/> counts them.
        /// </summary>
        public Tensor DestinationRanks(Tensor ids, Tensor tokensPerExpert)
        {
            var flat = ids.reshape(-1);
            var copyRanks = Table(_copyRanks);
            if (_maxCopies == 1) return copyRanks.index_select(0, flat).view_as(ids);
            var (sorted, order) = flat.sort(0, descending: false, stable: true);
            var firstPick = tokensPerExpert.cumsum(0) - tokensPerExpert;
            var indexInExpert = HeldScalars.Range(flat.shape[0], flat.device) - firstPick.index_select(0, sorted);
            var pickIndex = empty_like(flat).index_copy_(0, order, indexInExpert);
            var copy = pickIndex.remainder(Table(_copyCounts).index_select(0, flat));
            using var maxCopies = _maxCopies.ToScalar();
            return copyRanks.index_select(0, (flat * maxCopies).Plus(copy)).view_as(ids);
        }

        private static Tensor Table(Tensor? table) => table ?? throw new InvalidOperationException("The experts are not materialised yet.");

        public void Dispose()
        {
            _slotOfExpert?.Dispose();
            _copyRanks?.Dispose();
            _copyCounts?.Dispose();
        }
    }
}
