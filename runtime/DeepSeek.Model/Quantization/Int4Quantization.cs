using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Quantization;

/// <summary>
/// The int4 pass: applied to a loaded model, it holds its projections and routed experts as int4
/// weight-only with a group size (see docs/quantization.md). The model code knows nothing of it
/// beyond the layers' own ability to swap their weight for an int4 one.
/// </summary>
public static class Int4Quantization
{
    /// <summary>
    /// The pass <see cref="DeepSeekForCausalLM.Load"/> applies to the loaded weights for
    /// <paramref name="quantization"/> on <paramref name="device"/>, or null for none. Checked now, so
    /// a load that cannot be quantised is refused before any weight is read.
    /// </summary>
    /// <exception cref="ArgumentException">int4 with a dtype other than bf16.</exception>
    /// <exception cref="NotSupportedException">int4 on CUDA without the native helper.</exception>
    public static Action<DeepSeekForCausalLM>? Pass(WeightQuantization quantization, ScalarType dtype, Device device, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(quantization);
        ArgumentNullException.ThrowIfNull(device);
        quantization.CheckDType(dtype);
        if (!quantization.IsInt4) return null;
        var helper = Kernels(device, log);
        return model => Apply(model, quantization.GroupSize, helper, log);
    }

    /// <summary>Applies <paramref name="quantization"/> to a materialised model (a random one in <c>bench</c>); none does nothing.</summary>
    /// <exception cref="NotSupportedException">int4 on CUDA without the native helper.</exception>
    public static void Apply(DeepSeekForCausalLM model, WeightQuantization quantization, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Pass(quantization, model.DType, model.Device, log)?.Invoke(model);
    }

    /// <summary>
    /// Quantises the loaded model's projections and routed experts to int4 weight-only with
    /// <paramref name="groupSize"/>: with <paramref name="helper"/> (CUDA) multiplied by LibTorch's int4
    /// kernel, without it (CPU) dequantised at each use, which computes what the kernel computes at
    /// bf16 cost. Either way the int4 values are what is held. The embeddings, norms, router, LM head
    /// and <c>kv_b_proj</c> (whose weight the decode form of attention reads as a matrix, absorbed into
    /// queries and values) stay in the run dtype; a layer whose shape the group or kernel does not fit
    /// stays too, with a line to <paramref name="log"/>.
    /// </summary>
    public static void Apply(DeepSeekForCausalLM model, int groupSize, NativeHelper? helper, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var quantization = WeightQuantization.Int4(groupSize);
        quantization.CheckDType(model.DType);
        if (!model.IsMaterialised) throw new InvalidOperationException("Quantise after the weights are loaded.");
        if (model.Quantization.IsInt4) throw new InvalidOperationException("The model is already quantised.");
        if (helper is null && model.Device.type != DeviceType.CPU)
            throw new NotSupportedException("int4 on a GPU needs the native helper's kernels.");
        using var noGrad = no_grad();
        var kept = 0;
        var dtype = model.DType.ToString().ToLowerInvariant();
        foreach (var (name, module) in model.named_modules())
        {
            var reason = module switch
            {
                Linear linear when WeightQuantization.HoldsQuantised(name) => linear.QuantizeInt4(groupSize, helper),
                RoutedExperts experts => experts.QuantizeInt4(groupSize, helper),
                _ => null,
            };
            if (reason is null) continue;
            kept++;
            log?.Invoke($"int4: {name} stays {dtype}: {reason}");
        }
        model.Quantization = quantization;
        log?.Invoke($"int4: weights quantised with group {groupSize} ({(helper is null ? "reference path: dequantised at each use" : "packed for the int4 kernel")}), {kept} layers kept in {dtype}; {model.ResidentBytes:N0} bytes of weights resident");
    }

    /// <summary>
    /// The weight bytes a model of <paramref name="config"/> holds on a GPU in <paramref name="dtype"/>
    /// with <paramref name="quantization"/>, from shapes alone (nothing allocated): what <c>inspect</c> shows.
    /// </summary>
    public static long ResidentBytesFor(DeepSeekConfig config, ScalarType dtype, WeightQuantization quantization)
    {
        ArgumentNullException.ThrowIfNull(quantization);
        using var declared = DeepSeekForCausalLM.Build(config, dtype);
        return declared.named_modules().Sum(m => quantization.IsFp8
            ? Fp8Residency.HeldBytes(m.name, m.module, config.Quantization ?? Fp8Residency.Published)
            : HeldBytes(m.name, m.module, quantization));
    }

    /// <summary>
    /// The weight bytes <paramref name="module"/> (named <paramref name="name"/> in the model) holds
    /// itself, not its children, once <paramref name="quantization"/> is applied: its declared
    /// parameters, or the int4 weights of a projection or routed-expert stack the pass would quantise.
    /// </summary>
    public static long HeldBytes(string name, nn.Module module, WeightQuantization quantization)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(quantization);
        var own = WeightedModule.OwnBytes(module);
        if (quantization.IsInt4 && module is Linear linear && WeightQuantization.HoldsQuantised(name)
            && Int4Weight.Unsupported(linear.Weight.shape[0], linear.Weight.shape[1], quantization.GroupSize, kernel: true) is null)
            return own + Int4Weight.BytesFor(linear.Weight.shape[0], linear.Weight.shape[1], quantization.GroupSize) - (linear.Weight.numel() * linear.Weight.element_size());
        if (quantization.IsInt4 && module is RoutedExperts experts
            && Int4Experts.Unsupported(experts.HiddenSize, experts.IntermediateSize, quantization.GroupSize, kernel: true) is null)
            return Int4Experts.BytesFor(experts.HeldExperts.Count, experts.HiddenSize, experts.IntermediateSize, quantization.GroupSize);
        return own;
    }

    /// <summary>The native helper on CUDA (refused with the reason when it is absent); null on the CPU, whose reference path needs none.</summary>
    private static NativeHelper? Kernels(Device device, Action<string>? log)
    {
        if (device.type != DeviceType.CUDA) return null;
        var helper = NativeHelper.TryLoad(out var reason)
            ?? throw new NotSupportedException($"--quantization int4 on CUDA runs LibTorch's int4 kernels through the native helper, which is not available: {reason}");
        log?.Invoke($"int4: {reason}");
        return helper;
    }

}
