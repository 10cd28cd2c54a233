using System.Globalization;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
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
/// Built, it holds every expert. A pass may hand its forward to an <see cref="IExpertDispatch"/> before
/// materialisation (<see cref="HoldOnly"/>; the expert-parallel pass installs its sharded module): then
/// it holds only the experts the pass leaves it and computes the picks of those
/// (<see cref="ComputeSlots"/>), and the dispatch has the others computed elsewhere. Ranks and
/// placements are the dispatch's business, not this layer's.
/// </para>
/// </summary>
public sealed class RoutedExperts : WeightedModule
{
    private Parameter gate_up_proj;
    private Parameter down_proj;
    private IExpertDispatch? _dispatch;
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

    /// <summary>True once a pass installed a dispatch (<see cref="HoldOnly"/>): some picks are computed elsewhere.</summary>
    public bool IsSharded => _dispatch is not null;

    /// <summary>
    /// Routed picks per shard of this layer: as the dispatch counts them when sharded (per rank of the
    /// placement, what the group's imbalance is about), else per expert.
    /// </summary>
    public long[] TokensPerShard(long[] tokensPerExpert) => _dispatch?.TokensPerShard(tokensPerExpert) ?? tokensPerExpert;

    /// <summary>The dispatch a pass installed (<see cref="HoldOnly"/>), or null while the layer holds every expert.</summary>
    internal IExpertDispatch? Dispatch => _dispatch;

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
    /// Keeps only the experts <paramref name="held"/> names (ascending global ids; still declared, so
    /// the others are never allocated) and hands every forward to <paramref name="dispatch"/>, which the
    /// layer owns from now on. A pass, before the model is materialised.
    /// </summary>
    internal void HoldOnly(IReadOnlyList<int> held, IExpertDispatch dispatch)
    {
        ArgumentNullException.ThrowIfNull(held);
        ArgumentNullException.ThrowIfNull(dispatch);
        if (_dispatch is not null) throw new InvalidOperationException($"Layer {LayerIndex} is already sharded.");
        gate_up_proj = Redeclared(nameof(gate_up_proj), gate_up_proj, held.Count, 2 * IntermediateSize, HiddenSize);
        down_proj = Redeclared(nameof(down_proj), down_proj, held.Count, HiddenSize, IntermediateSize);
        if (_fp8 is not null) DeclareScales(held.Count);
        HeldExperts = held;
        _dispatch = dispatch;
    }

    /// <summary>True once the experts are materialised (they have a compute path).</summary>
    internal bool IsMaterialised => _local is not null;

    /// <summary>
    /// Puts <paramref name="gateUp"/> and <paramref name="down"/> (allocated stacks of the experts
    /// <paramref name="held"/> names, taken over) in force and frees the stacks held before. Runs between
    /// steps on the thread that owns the model: nothing may be computing with the old stacks.
    /// </summary>
    internal void Adopt(IReadOnlyList<int> held, Tensor gateUp, Tensor down)
    {
        ArgumentNullException.ThrowIfNull(held);
        ArgumentNullException.ThrowIfNull(gateUp);
        ArgumentNullException.ThrowIfNull(down);
        if (_fp8 is not null) throw new NotSupportedException($"Layer {LayerIndex}: FP8-resident experts are not moved between ranks yet; serve them without rebalancing.");
        HeldExperts = held;
        gate_up_proj = Replaced(nameof(gate_up_proj), gate_up_proj, gateUp);
        down_proj = Replaced(nameof(down_proj), down_proj, down);
        _local = new LocalExperts(this);
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
    /// none when sharded over a transport whose exchanges read split sizes back to the host (all but the
    /// lockstep transport's fixed-capacity decode steps).
    /// </summary>
    public long SyncFreeTokens => _dispatch is { SyncFree: false } ? 0 : Local.SyncFreeTokens;

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
        _dispatch?.Allocate(device);
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
    /// <c>Σ_k weights[t,k] · expert_{ids[t,k]}(hidden[t])</c> for every token, wherever the experts live:
    /// here when the layer holds every expert, else as its dispatch routes them.
    /// </summary>
    /// <param name="hidden"><c>[T, hidden]</c>.</param>
    /// <param name="ids">Global expert ids <c>[T, k]</c>.</param>
    /// <param name="weights"><c>[T, k]</c>, in the dtype of <paramref name="hidden"/>.</param>
    /// <param name="tokensPerExpert">Picks per expert <c>[n_routed_experts]</c> on the device.</param>
    public Tensor Forward(Tensor hidden, Tensor ids, Tensor weights, Tensor tokensPerExpert) =>
        _dispatch is null
            ? Local.Compute(new RoutedTokens(LayerIndex, hidden, ids, weights, tokensPerExpert))
            : _dispatch.Forward(hidden, ids, weights, tokensPerExpert);

    /// <summary>
    /// The held experts' weighted sum over picks given by slot (<see cref="RoutedTokens"/>): a pick whose
    /// slot is the sentinel <see cref="HeldExperts"/>.Count is computed elsewhere and skipped.
    /// </summary>
    /// <param name="hidden"><c>[T, hidden]</c>.</param>
    /// <param name="slots">Slot of each pick's expert in the held stacks <c>[T, k]</c>.</param>
    /// <param name="weights"><c>[T, k]</c>.</param>
    /// <param name="perSlot">Picks per slot <c>[held]</c> on the device, the sentinel's not counted.</param>
    internal Tensor ComputeSlots(Tensor hidden, Tensor slots, Tensor weights, Tensor perSlot) =>
        Local.Compute(new RoutedTokens(LayerIndex, hidden, slots, weights, perSlot));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _dispatch?.Dispose();
            _int4?.Dispose();
        }
        base.Dispose(disposing);
    }
}
