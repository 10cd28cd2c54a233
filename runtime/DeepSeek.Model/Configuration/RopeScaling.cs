namespace DeepSeek.Model.Configuration;

/// <summary>
/// Rotary embedding settings. <see cref="Type"/> is <c>default</c> (plain RoPE) or <c>yarn</c>; the
/// YaRN fields follow the names of DeepSeek's published configs.
/// </summary>
public sealed record RopeScaling(
    string Type,
    double Theta,
    double Factor = 1.0,
    int? OriginalMaxPositionEmbeddings = null,
    double BetaFast = 32.0,
    double BetaSlow = 1.0,
    double Mscale = 1.0,
    double MscaleAllDim = 0.0,
    double? AttentionFactor = null,
    bool Truncate = true)
{
    public bool IsYarn => Type == "yarn";

    /// <summary>YaRN's magnitude correction <c>0.1 · m · ln(s) + 1</c> (1 when not scaling up).</summary>
    public static double YarnMscale(double scale, double mscale) => scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;
}
