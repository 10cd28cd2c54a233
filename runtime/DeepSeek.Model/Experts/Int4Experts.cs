using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// The routed experts one layer holds, as int4 (<see cref="Int4GroupQuantization"/>'s values, scales
/// and zeros) in stacks indexed by slot: gate/up <c>[held, 2·inter, hidden/2]</c> with scales and zeros
/// <c>[held, hidden/group, 2·inter, 2]</c>, down <c>[held, hidden, inter/2]</c> with <c>[held,
/// inter/group, hidden, 2]</c>. Stacked so that the native helper's kernels read the expert of each
/// pick on the device (<see cref="ComputeFused"/>: up to <see cref="FusedMaxTokens"/> tokens, no host
/// synchronisation, a decode step capturable); larger batches take the Sorted path, which dequantises each active expert to the
/// activations' dtype (<see cref="Dequantize"/>) and multiplies in it, as the CPU reference path
/// always does.
/// </summary>
public sealed class Int4Experts : IDisposable
{
    /// <summary>
    /// Tokens up to which a batch takes the fused kernels (so every decode step captured as a graph, and
    /// prompts of a few hundred tokens). One token takes a block per pick; more tokens sort their picks
    /// by expert on the device and read each expert's rows once for all its picks, so the cost grows
    /// with the multiply-adds (on CUDA cores) rather than the bytes. Beyond this, dequantising each
    /// active expert once and multiplying in bf16 on tensor cores is cheaper (measured on an H200 in
    /// docs/quantization.md).
    /// </summary>
    public const long FusedMaxTokens = 256;

    /// <summary>The fused kernel's warps read 8 values at a time, so groups are multiples of 8.</summary>
    private const int KernelGroupMultiple = 8;

    private readonly NativeHelper? _kernel;

    private Int4Experts(NativeHelper? kernel, Tensor gateUp, Tensor gateUpScales, Tensor down, Tensor downScales, int groupSize)
    {
        _kernel = kernel;
        GateUp = gateUp;
        GateUpScales = gateUpScales;
        Down = down;
        DownScales = downScales;
        GroupSize = groupSize;
    }

    public Tensor GateUp { get; }

    public Tensor GateUpScales { get; }

    public Tensor Down { get; }

    public Tensor DownScales { get; }

    public int GroupSize { get; }

    /// <summary>True when batches of up to <see cref="FusedMaxTokens"/> tokens take the native kernel (CUDA).</summary>
    public bool UsesKernel => _kernel is not null;

    public long Bytes => new[] { GateUp, GateUpScales, Down, DownScales }.Sum(t => t.numel() * t.element_size());

    /// <summary>Why experts of this shape cannot be held as int4 with <paramref name="groupSize"/>, or null when they can.</summary>
    public static string? Unsupported(long hiddenSize, long intermediateSize, int groupSize, bool kernel)
    {
        if (hiddenSize % groupSize != 0) return $"hidden size {hiddenSize} is not a multiple of the int4 group size {groupSize}";
        if (intermediateSize % groupSize != 0) return $"the experts' intermediate size {intermediateSize} is not a multiple of the int4 group size {groupSize}";
        if (kernel && groupSize % KernelGroupMultiple != 0) return $"the int4 expert kernel needs a group size that is a multiple of {KernelGroupMultiple}, not {groupSize}";
        return null;
    }

    /// <summary>Bytes of <paramref name="experts"/> experts as int4: half a byte per value, a bf16 scale and zero per group.</summary>
    public static long BytesFor(long experts, long hiddenSize, long intermediateSize, int groupSize)
    {
        var values = 3 * hiddenSize * intermediateSize;
        return experts * ((values / 2) + (values / groupSize * 2 * 2));
    }

    /// <summary>
    /// Quantises the stacks <paramref name="gateUp"/> <c>[held, 2·inter, hidden]</c> and
    /// <paramref name="down"/> <c>[held, hidden, inter]</c> on their device, one expert at a time (the
    /// caller checked <see cref="Unsupported"/>); <paramref name="kernel"/> computes small batches on
    /// CUDA. The result owns its tensors (outside any dispose scope).
    /// </summary>
    public static Int4Experts Quantize(Tensor gateUp, Tensor down, int groupSize, NativeHelper? kernel)
    {
        ArgumentNullException.ThrowIfNull(gateUp);
        ArgumentNullException.ThrowIfNull(down);
        var (held, rows, hidden) = (gateUp.shape[0], gateUp.shape[1], gateUp.shape[2]);
        var inter = down.shape[2];
        var device = gateUp.device;
        var gateUpPacked = empty([held, rows, hidden / 2], ScalarType.Byte, device).DetachFromDisposeScope();
        var gateUpScales = empty([held, hidden / groupSize, rows, 2], ScalarType.BFloat16, device).DetachFromDisposeScope();
        var downPacked = empty([held, hidden, inter / 2], ScalarType.Byte, device).DetachFromDisposeScope();
        var downScales = empty([held, inter / groupSize, hidden, 2], ScalarType.BFloat16, device).DetachFromDisposeScope();
        for (var slot = 0; slot < held; slot++)
        {
            using var scope = NewDisposeScope();
            using var gateUpExpert = Int4GroupQuantization.Quantize(gateUp[slot], groupSize);
            gateUpPacked[slot].copy_(gateUpExpert.Packed);
            gateUpScales[slot].copy_(gateUpExpert.ScalesAndZeros);
            using var downExpert = Int4GroupQuantization.Quantize(down[slot], groupSize);
            downPacked[slot].copy_(downExpert.Packed);
            downScales[slot].copy_(downExpert.ScalesAndZeros);
        }
        return new Int4Experts(kernel, gateUpPacked, gateUpScales, downPacked, downScales, groupSize);
    }

    /// <summary>Slot <paramref name="slot"/>'s gate/up <c>[2·inter, hidden]</c> and down <c>[hidden, inter]</c> in <paramref name="dtype"/>.</summary>
    public (Tensor GateUp, Tensor Down) Dequantize(int slot, ScalarType dtype)
    {
        if (_kernel is not null && dtype == ScalarType.BFloat16)
            return (_kernel.Int4Dequantize(GateUp[slot], GateUpScales[slot], GroupSize), _kernel.Int4Dequantize(Down[slot], DownScales[slot], GroupSize));
        return (Int4GroupQuantization.Dequantize(GateUp[slot], GateUpScales[slot], GroupSize, dtype),
                Int4GroupQuantization.Dequantize(Down[slot], DownScales[slot], GroupSize, dtype));
    }

    /// <summary>
    /// <c>Σ_k weight[t,k] · expert_{slot[t,k]}(hidden[t])</c> by the native kernel, <c>[T, hidden]</c>
    /// bf16; a pick whose slot is the "elsewhere" sentinel adds nothing. Only with <see cref="UsesKernel"/>.
    /// </summary>
    public Tensor ComputeFused(RoutedTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var kernel = _kernel ?? throw new InvalidOperationException("The fused int4 expert kernel needs the native helper (CUDA).");
        return kernel.Int4Moe(tokens.Hidden, tokens.Slots, tokens.Weights, GateUp, GateUpScales, Down, DownScales, GroupSize);
    }

    public void Dispose()
    {
        GateUp.Dispose();
        GateUpScales.Dispose();
        Down.Dispose();
        DownScales.Dispose();
    }
}
