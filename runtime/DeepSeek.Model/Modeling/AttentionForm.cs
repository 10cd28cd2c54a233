using DeepSeek.Model.Configuration;

namespace DeepSeek.Model.Modeling;

/// <summary>How MLA attends in one step (both exact; <c>docs/model.md</c>).</summary>
public enum AttentionForm
{
    /// <summary><c>kv_b_proj</c> absorbed into query and output; scores against the cached latent.</summary>
    Absorbed,

    /// <summary>Per-head keys and values expanded from the latent, then fused SDPA.</summary>
    Expanded,
}

/// <summary>The choice between the two forms, a pure function of the step's shape.</summary>
public static class AttentionForms
{
    /// <summary>Above this many bytes of float32 scores the absorbed form is not used whatever it costs (a 32K prompt asked for 64 GiB).</summary>
    public const long MaxAbsorbedScoreBytes = 256L << 20;

    /// <summary>
    /// The form with fewer multiply-adds for <paramref name="sequences"/> sequences of up to
    /// <paramref name="queries"/> new tokens over <paramref name="context"/> positions, unless the
    /// absorbed form's score matrix would exceed <see cref="MaxAbsorbedScoreBytes"/>. Absorbing costs
    /// <c>q·W_UK</c> per query and scores over latent + rope plus values over the latent; expanding
    /// costs <c>kv_b_proj</c> over every context position and scores over nope + rope plus values
    /// over v. Decode (one query over a long context) is always absorbed; long prefills are expanded.
    /// </summary>
    public static AttentionForm Choose(DeepSeekConfig config, long sequences, long queries, long context)
    {
        ArgumentNullException.ThrowIfNull(config);
        long heads = config.NumAttentionHeads, latent = config.KvLoraRank, rope = config.QkRopeHeadDim, nope = config.QkNopeHeadDim, v = config.VHeadDim;
        var pairs = sequences * queries * heads * context;
        if (pairs * sizeof(float) > MaxAbsorbedScoreBytes) return AttentionForm.Expanded;
        var absorbed = (sequences * queries * heads * nope * latent) + (pairs * ((2 * latent) + rope));
        var expanded = (sequences * context * latent * heads * (nope + v)) + (pairs * (nope + rope + v));
        return expanded < absorbed ? AttentionForm.Expanded : AttentionForm.Absorbed;
    }
}
