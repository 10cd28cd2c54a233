namespace DeepSeek.Model.Configuration;

/// <summary>
/// config.json's <c>quantization_config</c> of a block-scaled FP8 checkpoint, as DeepSeek-V3 publishes
/// it: every quantised linear <c>X.weight</c> is F8_E4M3 <c>[out, in]</c> with <c>X.weight_scale_inv</c>
/// float32 <c>[⌈out/rows⌉, ⌈in/columns⌉]</c>, and the weight is <c>fp8 · scale_inv</c> of its block
/// (edge blocks partial). Activations are quantised dynamically by engines that compute in FP8; this
/// runtime dequantises the weights and computes in the run dtype, so only the weight layout matters.
/// </summary>
public sealed record Fp8BlockQuantization(string Format, string ActivationScheme, int BlockRows, int BlockColumns)
{
    public const string Method = "fp8";

    /// <summary>What this runtime reads (the published layout), named in refusals.</summary>
    public const string Supported = "quant_method \"fp8\", fmt \"e4m3\", activation_scheme \"dynamic\", weight_block_size [128, 128]";

    public const string ScaleSuffix = "_scale_inv";

    public override string ToString() => $"fp8 {Format}, {BlockRows}×{BlockColumns} blocks";
}
