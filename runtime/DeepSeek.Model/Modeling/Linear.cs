using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Native;
using DeepSeek.Model.Quantization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// A linear layer <c>x·Wᵀ (+ b)</c>, as <c>nn.Linear</c> but declared, never randomly initialised.
/// After <see cref="QuantizeInt4"/> (the int4 pass, <see cref="Int4Quantization"/>) the weight is held as int4 (<see cref="Int4Weight"/>) and the
/// original freed; FP8-resident (<see cref="DeclareFp8"/> for an FP8 checkpoint's layer,
/// <see cref="QuantizeFp8"/> for a loaded one) it holds the checkpoint's layout itself, <c>weight</c>
/// as E4M3 bytes and <c>weight_scale_inv</c> as float32 blocks, and dequantises the weight into a
/// temporary of the activations' dtype for each product (see docs/quantization.md).
/// </summary>
internal sealed class Linear : WeightedModule
{
    private Parameter weight;
    private Parameter? bias;
    private Parameter? weight_scale_inv;
    private Int4Weight? _int4;
    private Fp8BlockQuantization? _fp8;
    private NativeHelper? _fp8Kernel;

    public Linear(string name, long inFeatures, long outFeatures, bool hasBias, ScalarType dtype) : base(name)
    {
        weight = Declare(dtype, outFeatures, inFeatures);
        if (hasBias) bias = Declare(dtype, outFeatures);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    /// <summary>The block layout the weight is held in, when FP8-resident.</summary>
    public Fp8BlockQuantization? Fp8 => _fp8;

    /// <summary>
    /// Declares the weight as the checkpoint's FP8 bytes and block scales, so that loading copies them
    /// as they are and nothing wider is ever allocated (a pass before materialising).
    /// </summary>
    public void DeclareFp8(Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (_fp8 is not null) throw new InvalidOperationException("The layer is already FP8.");
        var shape = weight.shape;
        weight = Redeclared(nameof(weight), weight, ScalarType.Byte, shape);
        weight_scale_inv = Declare(ScalarType.Float32, Fp8BlockWeights.ScaleShape(shape, blocks));
        ConditionallyRegisterParameter(nameof(weight_scale_inv), weight_scale_inv);
        _fp8 = blocks;
    }

    /// <summary>Quantises the loaded weight to FP8 blocks (<see cref="Fp8BlockWeights.Quantize"/>) and frees it.</summary>
    public void QuantizeFp8(Fp8BlockQuantization blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (IsDeclared(weight)) throw new InvalidOperationException("Quantise after the weights are loaded.");
        if (_fp8 is not null || _int4 is not null) throw new InvalidOperationException("The layer is already quantised.");
        var (bytes, scaleInv) = Fp8BlockWeights.Quantize(weight, blocks);
        bytes.DetachFromDisposeScope();
        scaleInv.DetachFromDisposeScope();
        weight = Replaced(nameof(weight), weight, bytes);
        weight_scale_inv = new Parameter(scaleInv, requires_grad: false);
        weight_scale_inv.DetachFromDisposeScope();
        ConditionallyRegisterParameter(nameof(weight_scale_inv), weight_scale_inv);
        _fp8 = blocks;
    }

    /// <summary>
    /// Multiplies the FP8 weight with the native helper's kernels (bf16 activations on CUDA): its bytes
    /// read once per product instead of dequantised into a temporary (the native-kernel pass).
    /// </summary>
    public void UseFp8Kernel(NativeHelper helper)
    {
        ArgumentNullException.ThrowIfNull(helper);
        if (_fp8 is null) throw new InvalidOperationException("The layer is not FP8.");
        _fp8Kernel = helper;
    }

    internal override void Allocate(Device device)
    {
        weight = Allocated(nameof(weight), weight, device);
        if (weight_scale_inv is not null) weight_scale_inv = Allocated(nameof(weight_scale_inv), weight_scale_inv, device);
        if (bias is not null) bias = Allocated(nameof(bias), bias, device);
    }

    /// <summary>The adapter slots of this projection (<see cref="DeepSeek.Model.Lora.LoraSlots"/>), when it takes LoRA adapters.</summary>
    internal DeepSeek.Model.Lora.LoraStack? Lora { get; set; }

    public Tensor Forward(Tensor input) => Lora is null ? Product(input) : Lora.AddTo(Product(input), input);

    private Tensor Product(Tensor input)
    {
        if (_fp8 is not null && _fp8Kernel is not null && input.dtype == ScalarType.BFloat16 && input.device_type == TorchSharp.DeviceType.CUDA)
        {
            using var rows = input.reshape(-1, input.shape[^1]);
            using var rowProducts = _fp8Kernel.Fp8Linear(rows, weight, weight_scale_inv!);
            var output = rowProducts.view([.. input.shape[..^1], weight.shape[0]]);
            return bias is null ? output : output.add_(bias, HeldScalars.One);
        }
        if (_fp8 is not null)
        {
            using var dense = Fp8BlockWeights.DequantizeTo(weight, weight_scale_inv!, _fp8, input.dtype);
            return nn.functional.linear(input, dense, bias);
        }
        if (_int4 is null) return nn.functional.linear(input, weight, bias);
        var product = _int4.Multiply(input);
        return bias is null ? product : product.add_(bias, HeldScalars.One);
    }

    /// <summary>Bytes this layer holds on its device.</summary>
    public long ResidentBytes => (weight.numel() * weight.element_size()) + (bias is null ? 0 : bias.numel() * bias.element_size())
        + (weight_scale_inv is null ? 0 : weight_scale_inv.numel() * sizeof(float)) + (_int4?.Bytes ?? 0);

    /// <summary>
    /// Quantises the loaded weight to int4 with <paramref name="groupSize"/>, for the native helper's
    /// kernel when <paramref name="helper"/> is given (the GPU), else for the dequantise-per-use
    /// reference path (the CPU), and frees it. Returns why the layer stays unquantised, or null.
    /// </summary>
    public string? QuantizeInt4(int groupSize, NativeHelper? helper)
    {
        if (IsDeclared(weight)) throw new InvalidOperationException("Quantise after the weights are loaded.");
        if (_int4 is not null || _fp8 is not null) throw new InvalidOperationException("The layer is already quantised.");
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
