using DeepSeek.Model.Modeling;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// The memory-bandwidth floor of a decode step: every weight the step reads, read once. Attention,
/// dense and shared-expert weights and the LM head are read whatever the batch; routed experts only
/// when a token picks them, counted as the expected number of distinct experts a batch of uniformly
/// routed tokens touches. The embedding table is looked up by row and left out.
/// </summary>
public sealed record DecodeFloor(long AlwaysReadBytes, long BytesPerRoutedExpert, int RoutedExperts, int ExpertsPerToken, int MoeLayers)
{
    public static DecodeFloor Of(DeepSeekForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long always = 0, routed = 0;
        // By module, so that int4 weights (held outside the parameters) count at their own size.
        foreach (var (name, bytes) in model.ResidentBytesByModule())
        {
            if (name.EndsWith(".mlp.experts", StringComparison.Ordinal)) routed += bytes;
            else if (!name.EndsWith("embed_tokens", StringComparison.Ordinal)) always += bytes;
        }
        var config = model.Config;
        var moeLayers = Enumerable.Range(0, config.NumHiddenLayers).Count(config.IsMoeLayer);
        var experts = Math.Max(1, config.NRoutedExperts);
        return new DecodeFloor(always, moeLayers == 0 ? 0 : routed / (moeLayers * experts), experts, config.NumExpertsPerTok, moeLayers);
    }

    public double BytesPerStep(int batch)
    {
        var distinct = RoutedExperts * (1 - Math.Pow(1 - (double)ExpertsPerToken / RoutedExperts, batch));
        return AlwaysReadBytes + (MoeLayers * distinct * BytesPerRoutedExpert);
    }

    public double MsPerStep(int batch, double bandwidthGBs) => BytesPerStep(batch) / (bandwidthGBs * 1e9) * 1e3;
}
