using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// A linear layer <c>x·Wᵀ (+ b)</c>, as <c>nn.Linear</c> but declared, never randomly initialised.
/// After <see cref="QuantizeInt4"/> (the int4 pass, <see cref="Int4Quantization"/>) the weight is held as int4 (<see cref="Int4Weight"/>) and the
/// original freed (see docs/quantization.md).
/// </summary>
internal sealed class Linear : WeightedModule
{
    private Parameter weight;
    private Parameter? bias;
    private Int4Weight? _int4;

    public Linear(string name, long inFeatures, long outFeatures, bool hasBias, ScalarType dtype) : base(name)
    {
        weight = Declare(dtype, outFeatures, inFeatures);
        if (hasBias) bias = Declare(dtype, outFeatures);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    internal override void Allocate(Device device)
    {
        weight = Allocated(nameof(weight), weight, device);
        if (bias is not null) bias = Allocated(nameof(bias), bias, device);
    }

    public Tensor Forward(Tensor input)
    {
        if (_int4 is null) return nn.functional.linear(input, weight, bias);
        var product = _int4.Multiply(input);
        return bias is null ? product : product.add_(bias, HeldScalars.One);
    }

    /// <summary>Bytes this layer holds on its device.</summary>
    public long ResidentBytes => (weight.numel() * weight.element_size()) + (bias is null ? 0 : bias.numel() * bias.element_size()) + (_int4?.Bytes ?? 0);

    /// <summary>
    /// Quantises the loaded weight to int4 with <paramref name="groupSize"/>, for the native helper's
    /// kernel when <paramref name="helper"/> is given (the GPU), else for the dequantise-per-use
    /// reference path (the CPU), and frees it. Returns why the layer stays unquantised, or null.
    /// </summary>
    public string? QuantizeInt4(int groupSize, NativeHelper? helper)
    {
        if (IsDeclared(weight)) throw new InvalidOperationException("Quantise after the weights are loaded.");
        if (_int4 is not null) throw new InvalidOperationException("The layer is already quantised.");
        var (n, k) = (weight.shape[0], weight.shape[1]);
        if (Int4Weight.Unsupported(n, k, groupSize, kernel: helper is not null) is { } reason) return reason;
        using var scope = NewDisposeScope();
        _int4 = Int4Weight.Quantize(weight, groupSize, helper);
        var (device, dtype) = (weight.device, weight.dtype);
        weight.Dispose();
        weight = new Parameter(empty([0], dtype, device), requires_grad: false);
        weight.DetachFromDisposeScope();
        ConditionallyRegisterParameter(nameof(weight), weight);
        return null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _int4?.Dispose();
        base.Dispose(disposing);
    }
}
