namespace DeepSeek.Gateway.Routing;

/// <summary>The weighted A/B split as a pure function: the caller brings the randomness.</summary>
internal static class VariantPick
{
    /// <summary>
    /// The variant whose slice of the cumulative weights holds <paramref name="sample"/> (uniform in [0, 1));
    /// null when every weight is 0 (nothing eligible). A variant with no ready endpoint is passed in with
    /// weight 0, so the others share its traffic in their own proportions.
    /// </summary>
    public static int? Choose(IReadOnlyList<int> weights, double sample)
    {
        ArgumentNullException.ThrowIfNull(weights);
        long total = 0;
        foreach (var w in weights) total += Math.Max(0, w);
        if (total == 0) return null;
        var point = Math.Clamp(sample, 0, Math.BitDecrement(1.0)) * total;
        long cumulative = 0;
        int? last = null;
        for (var i = 0; i < weights.Count; i++)
        {
            if (weights[i] <= 0) continue;
            cumulative += weights[i];
            last = i;
            if (point < cumulative) return i;
        }
        return last;
    }
}
