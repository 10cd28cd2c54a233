using DeepSeek.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Lora;

/// <summary>
/// The adapters a model can apply in one step: <see cref="SlotCount"/> slots (<c>--max-loras</c>) of rank
/// up to <see cref="MaxRank"/> (<c>--max-lora-rank</c>) held as static stacked buffers per adapted
/// projection, so that captured decode graphs stay valid while adapters come and go: loading an adapter
/// into a slot copies into the same memory. Adapters beyond the slots stay in host memory
/// (<see cref="LoraAdapter"/>) and are swapped in least-recently-used first (<see cref="Place"/>).
/// <para>
/// Applied per token, punica/S-LoRA style, with no merging and no per-adapter batches: for a
/// projection <c>y = x·Wᵀ</c> of a step, <c>y += ((x·A_allᵀ) ⊙ M)·B_all</c>, where <c>A_all</c>
/// <c>[slots·R, in]</c> stacks every slot's A (padded to R rows with zeros), <c>B_all</c> <c>[slots·R, out]</c>
/// its scale·Bᵀ, and the mask <c>M</c> <c>[tokens, slots·R]</c> keeps each token's own slot (none: a zero row).
/// The mask is made once per forward from each token's slot (<see cref="Select"/>) on the device, so a
/// step's shape never depends on which adapters it mixes. The same TorchSharp code runs on CPU and CUDA.
/// </para>
/// </summary>
public sealed class LoraSlots : IDisposable
{
    private readonly Dictionary<string, LoraStack> _stacks;
    private readonly Tensor _slotOfColumn;
    private readonly LoraAdapter?[] _resident;
    private readonly long[] _lastUsed;
    private long _clock;

    private LoraSlots(int slotCount, int maxRank, Device device, ScalarType dtype, Dictionary<string, LoraStack> stacks)
    {
        SlotCount = slotCount;
        MaxRank = maxRank;
        DType = dtype;
        _stacks = stacks;
        _resident = new LoraAdapter?[slotCount];
        _lastUsed = new long[slotCount];
        using var slots = HeldScalars.Range(slotCount, device);
        _slotOfColumn = slots.repeat_interleave(maxRank).DetachFromDisposeScope();
    }

    public int SlotCount { get; }

    public int MaxRank { get; }

    public ScalarType DType { get; }

    /// <summary>The projections that take adapters in this model (checkpoint module names).</summary>
    public IReadOnlyCollection<string> Modules => _stacks.Keys;

    /// <summary>The adapter in each slot (null: empty).</summary>
    public IReadOnlyList<LoraAdapter?> Resident => _resident;

    /// <summary>The mask of the forward under way (<see cref="Select"/>); null: nothing to add.</summary>
    internal Tensor? Mask { get; private set; }

    /// <summary>
    /// The pass that gives <paramref name="model"/> adapter slots: zeroed stacks for each of
    /// <paramref name="modules"/> (every adaptable projection when null), on the model's device and dtype.
    /// </summary>
    public static LoraSlots Attach(DeepSeekForCausalLM model, int slotCount, int maxRank, IEnumerable<string>? modules = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(slotCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRank, 1);
        if (model.Lora is not null) throw new InvalidOperationException("The model has adapter slots already.");
        var targets = LoraTargets.Of(model.Config);
        var wanted = modules is null ? [.. targets.Supported.Keys] : new HashSet<string>(modules, StringComparer.Ordinal);
        var linears = model.named_modules().Where(m => m.module is Linear && wanted.Contains(m.name)).ToDictionary(m => m.name, m => (Linear)m.module, StringComparer.Ordinal);
        if (wanted.FirstOrDefault(m => !linears.ContainsKey(m)) is { } missing)
            throw new ArgumentException($"The model has no adaptable projection '{missing}'.", nameof(modules));
        var stacks = new Dictionary<string, LoraStack>(StringComparer.Ordinal);
        var slots = new LoraSlots(slotCount, maxRank, model.Device, model.DType, stacks);
        using var noGrad = no_grad();
        foreach (var (name, linear) in linears)
        {
            var (inFeatures, outFeatures) = targets.Supported[name];
            var stack = new LoraStack(slots,
                zeros([slotCount * maxRank, inFeatures], model.DType, model.Device).DetachFromDisposeScope(),
                zeros([slotCount * maxRank, outFeatures], model.DType, model.Device).DetachFromDisposeScope());
            stacks[name] = stack;
            linear.Lora = stack;
        }
        model.Lora = slots;
        return slots;
    }

    /// <summary>
    /// The slot of each adapter of a step (in the order given; null → −1, no adapter), loading into a
    /// slot those not resident: into a free slot, else into the least recently used one that this step
    /// does not use. Throws when the step names more adapters than there are slots (the scheduler never
    /// plans such a step). Engine thread only.
    /// </summary>
    public int[] Place(IReadOnlyList<LoraAdapter?> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var distinct = adapters.OfType<LoraAdapter>().Distinct().ToList();
        if (distinct.Count == 0) return [.. adapters.Select(_ => -1)]; // a base-only step: nothing to place, nothing used
        if (distinct.Count > SlotCount)
            throw new InvalidOperationException($"A step names {distinct.Count} adapters but there are {SlotCount} slots (--max-loras).");
        var tick = ++_clock;
        var slotOf = new Dictionary<LoraAdapter, int>();
        foreach (var adapter in distinct)
            if (Array.IndexOf(_resident, adapter) is var slot and >= 0) slotOf[adapter] = slot;
        foreach (var adapter in distinct.Where(a => !slotOf.ContainsKey(a)))
        {
            var used = slotOf.Values.ToHashSet();
            var free = Enumerable.Range(0, SlotCount).Where(s => !used.Contains(s))
                .OrderBy(s => _resident[s] is null ? 0 : 1).ThenBy(s => _lastUsed[s]).First();
            Load(free, adapter);
            slotOf[adapter] = free;
        }
        foreach (var slot in slotOf.Values) _lastUsed[slot] = tick;
        return [.. adapters.Select(a => a is null ? -1 : slotOf[a])];
    }

    /// <summary>Copies <paramref name="adapter"/> into <paramref name="slot"/> (its projections; the others' rows zeroed), scale folded into B.</summary>
    public void Load(int slot, LoraAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, SlotCount);
        if (adapter.Rank > MaxRank) throw new ArgumentException($"Adapter {adapter.Name} has rank {adapter.Rank}, above the slots' {MaxRank}.", nameof(adapter));
        if (adapter.Modules.Keys.FirstOrDefault(m => !_stacks.ContainsKey(m)) is { } missing)
            throw new LoraAdapterException($"LoRA adapter '{adapter.Name}' adapts '{missing}', which the server's adapter slots do not cover; start it with --enable-lora-updates (slots on every projection) or load the adapter at start.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (module, stack) in _stacks)
            stack.Write(slot, adapter.Modules.GetValueOrDefault(module), adapter.Scale);
        _resident[slot] = adapter;
    }

    /// <summary>Empties the slot holding <paramref name="adapter"/>, if any (an unloaded adapter).</summary>
    public void Evict(LoraAdapter adapter)
    {
        var slot = Array.IndexOf(_resident, adapter);
        if (slot < 0) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var stack in _stacks.Values) stack.Write(slot, null, 0);
        _resident[slot] = null;
    }

    /// <summary>
    /// Sets the mask of one forward from each row's slot (<c>[rows]</c> int64, −1: no adapter) until the
    /// returned scope ends. Computed on the device with no host read, so a captured decode step recomputes
    /// it from its static slot row on every replay. Null <paramref name="rowSlots"/>: no adapter this forward.
    /// </summary>
    internal ForwardScope Select(Tensor? rowSlots)
    {
        Mask = rowSlots is null ? null : rowSlots.unsqueeze(1).eq(_slotOfColumn).to(DType);
        return new ForwardScope(this);
    }

    public void Dispose()
    {
        foreach (var stack in _stacks.Values) stack.Dispose();
        _slotOfColumn.Dispose();
    }

    /// <summary>Clears the mask when a forward ends (the tensor itself belongs to the forward's dispose scope).</summary>
    internal readonly struct ForwardScope(LoraSlots slots) : IDisposable
    {
        public void Dispose() => slots.Mask = null;
    }
}

/// <summary>One projection's slots: A of every slot stacked <c>[slots·R, in]</c>, scale·Bᵀ stacked <c>[slots·R, out]</c>.</summary>
internal sealed class LoraStack(LoraSlots slots, Tensor a, Tensor b) : IDisposable
{
    /// <summary><paramref name="output"/> (<c>x·Wᵀ</c>, <c>[rows, out]</c>) plus each row's adapter delta, in place; unchanged when no adapter is selected.</summary>
    public Tensor AddTo(Tensor output, Tensor input)
    {
        if (slots.Mask is not { } mask) return output;
        using var shrunk = input.matmul(a.t());
        shrunk.mul_(mask);
        return output.addmm_(shrunk, b);
    }

    /// <summary>Slot <paramref name="slot"/>'s rows: the adapter's A and scale·Bᵀ, zero-padded to R; zeros for null.</summary>
    public void Write(int slot, LoraWeights? weights, double scale)
    {
        var rank = slots.MaxRank;
        var aRows = a.narrow(0, (long)slot * rank, rank);
        var bRows = b.narrow(0, (long)slot * rank, rank);
        aRows.zero_();
        bRows.zero_();
        if (weights is null) return;
        using var hostA = tensor(weights.A, [weights.Rank, weights.In]);
        using var hostB = tensor(weights.B, [weights.Out, weights.Rank]);
        // Scaled in float64, then rounded once to the model's dtype (as merging W + scale·B·A would round).
        using var wideB = hostB.to_type(ScalarType.Float64);
        using var factor = scale.ToScalar();
        using var scaledB = wideB.t().mul(factor);
        aRows.narrow(0, 0, weights.Rank).copy_(hostA);
        bRows.narrow(0, 0, weights.Rank).copy_(scaledB);
    }

    public void Dispose()
    {
        a.Dispose();
        b.Dispose();
    }
}
