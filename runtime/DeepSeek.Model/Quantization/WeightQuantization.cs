using static TorchSharp.torch;

namespace DeepSeek.Model.Quantization;

/// <summary>
/// How the runtime holds its weights (<c>--quantization</c>): <c>none</c> (the run dtype; an FP8
/// checkpoint is dequantised to it at load), <c>int4</c> weight-only, quantised at load with one
/// scale and zero per <see cref="GroupSize"/> input values of a row, activations in bf16, or
/// <c>fp8</c>, block-scaled FP8 as DeepSeek-V3 publishes it (<see cref="Fp8Residency"/>).
/// </summary>
public sealed record WeightQuantization(string Name, int GroupSize)
{
    /// <summary>The group size of <c>--quantization int4</c>, as gpt-fast and LibTorch's int4 kernels are usually run.</summary>
    public const int DefaultGroupSize = 128;

    public static readonly WeightQuantization None = new("none", 0);

    /// <summary>FP8-resident in the published 128×128 block layout (<see cref="Fp8Residency"/>).</summary>
    public static readonly WeightQuantization Fp8 = new("fp8", 128);

    public static readonly IReadOnlyList<string> Names = ["none", "int4", "fp8"];

    public static WeightQuantization Int4(int groupSize = DefaultGroupSize)
    {
        if (groupSize < 2 || groupSize % 2 != 0) throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "The int4 group size must be even.");
        return new("int4", groupSize);
    }

    public bool IsInt4 => Name == "int4";

    public bool IsFp8 => Name == "fp8";

    /// <summary>
    /// Whether a quantisation holds the <see cref="Modeling.Linear"/> named <paramref name="module"/> in its
    /// own format: every projection but the LM head (the published checkpoints keep it in bf16) and
    /// <c>kv_b_proj</c>, whose weight the decode form of attention reads as a matrix, absorbed into queries and values.
    /// </summary>
    public static bool HoldsQuantised(string module) => module != "lm_head" && !module.EndsWith(".kv_b_proj", StringComparison.Ordinal);

    /// <exception cref="ArgumentException">Not one of <see cref="Names"/>.</exception>
    public static WeightQuantization Parse(string name) => name switch
    {
        "none" => None,
        "int4" => Int4(),
        "fp8" => Fp8,
        _ => throw new ArgumentException($"--quantization {name} is not supported; use {string.Join(" or ", Names)}."),
    };

    /// <summary>Refuses a combination the runtime cannot run, saying what to use instead.</summary>
    /// <exception cref="ArgumentException">int4 with activations other than bf16.</exception>
    public void CheckDType(ScalarType dtype)
    {
        if (DTypeProblem(dtype) is { } problem) throw new ArgumentException(problem);
    }

    /// <summary>Why this format cannot run with <paramref name="dtype"/> activations, or null.</summary>
    public string? DTypeProblem(ScalarType dtype) => IsInt4 && dtype != ScalarType.BFloat16
        ? $"--quantization int4 computes with bf16 activations (LibTorch's int4 kernels take bf16); use --dtype bfloat16, not {dtype.ToString().ToLowerInvariant()}."
        : null;

    public override string ToString() => IsInt4 ? $"int4 (group {GroupSize})" : IsFp8 ? "fp8 (128×128 blocks, dequantised per use)" : Name;
}
