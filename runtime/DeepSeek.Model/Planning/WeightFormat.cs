using DeepSeek.Model.Configuration;
using DeepSeek.Model.Quantization;
using static TorchSharp.torch;

namespace DeepSeek.Model.Planning;

/// <summary>
/// A way of holding the weights on the GPU that the memory plan prices: its name, what the plan
/// assumes about it, whether the runtime can hold weights that way today, and the bytes a module of
/// the model (built in bf16) takes held that way.
/// </summary>
public sealed class WeightFormat
{
    private readonly Func<string, nn.Module, long> _heldBytes;

    private WeightFormat(string name, string assumes, bool residentToday, Func<string, nn.Module, long> heldBytes)
    {
        Name = name;
        Assumes = assumes;
        ResidentToday = residentToday;
        _heldBytes = heldBytes;
    }

    public string Name { get; }

    /// <summary>What a weight costs in this format, in words: printed under the plan.</summary>
    public string Assumes { get; }

    /// <summary>False for a format the plan prices ahead of the runtime (FP8 kept resident).</summary>
    public bool ResidentToday { get; }

    /// <summary>
    /// What <c>--dtype bfloat16</c> holds today: two bytes a weight, every tensor; an FP8 checkpoint is
    /// dequantised to it at load, so this is also the residency of the published FP8 V3.
    /// </summary>
    public static WeightFormat Bf16 { get; } = new("bf16",
        "2 bytes a weight (the router 4: routing runs in float32); what an FP8 checkpoint takes with --quantization none, dequantised at load",
        residentToday: true, (name, module) => Int4Quantization.HeldBytes(name, module, WeightQuantization.None));

    /// <summary>Block-scaled FP8 kept as stored (<c>--quantization fp8</c>, <see cref="Fp8Residency"/>).</summary>
    public static WeightFormat Fp8(Fp8BlockQuantization? blocks = null)
    {
        var layout = blocks ?? Fp8Residency.Published;
        return new WeightFormat("fp8",
            $"1 byte a projection weight + a float32 scale per {layout.BlockRows}×{layout.BlockColumns} block; embeddings, norms, kv_b_proj, LM head bf16, router float32 (--quantization fp8)",
            residentToday: true, (name, module) => Fp8Residency.HeldBytes(name, module, layout));
    }

    /// <summary><c>--quantization int4</c> as <see cref="Int4Quantization"/> applies it.</summary>
    public static WeightFormat Int4(int groupSize = WeightQuantization.DefaultGroupSize)
    {
        var quantization = WeightQuantization.Int4(groupSize);
        return new WeightFormat($"int4 g{groupSize}",
            $"½ byte a projection weight + a bf16 scale and zero per {groupSize} inputs; embeddings, norms, kv_b_proj, LM head bf16, router float32",
            residentToday: true, (name, module) => Int4Quantization.HeldBytes(name, module, quantization));
    }

    /// <summary>
    /// <c>--dtype float32</c> without quantisation: four bytes a weight, every tensor (a model built in
    /// bf16 holds two, its float32 router four).
    /// </summary>
    public static WeightFormat Float32 { get; } = new("float32", "4 bytes a weight, every tensor (--dtype float32)",
        residentToday: true, (_, module) => module.named_parameters(recurse: false).Sum(p => p.parameter.numel() * 4));

    /// <summary>
    /// The format a run holds its weights in: <paramref name="quantization"/>'s, else the dtype's (bf16
    /// and float16 alike take two bytes). <paramref name="blocks"/>: the checkpoint's FP8 layout, if it has one.
    /// </summary>
    public static WeightFormat Of(ScalarType dtype, WeightQuantization quantization, Fp8BlockQuantization? blocks = null)
    {
        ArgumentNullException.ThrowIfNull(quantization);
        if (quantization.IsInt4) return Int4(quantization.GroupSize);
        if (quantization.IsFp8) return Fp8(blocks);
        return dtype == ScalarType.Float32 ? Float32 : Bf16;
    }

    /// <summary>The bytes <paramref name="module"/>, named <paramref name="name"/> in a model built in bf16, holds itself in this format.</summary>
    public long HeldBytes(string name, nn.Module module) => _heldBytes(name, module);

    public override string ToString() => Name;
}
