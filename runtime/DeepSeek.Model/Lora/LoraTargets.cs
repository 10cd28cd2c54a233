using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeek.Model.Configuration;

namespace DeepSeek.Model.Lora;

/// <summary>
/// The projections of a model that an adapter may change, by checkpoint module name
/// (<c>model.layers.0.self_attn.q_a_proj</c>) with their shapes, and the ones it has but this runtime
/// does not adapt, each with the reason. Pure: a function of config.json, so an adapter can be checked
/// before (or without) the model being loaded.
/// </summary>
public sealed class LoraTargets
{
    private readonly Dictionary<string, (long In, long Out)> _supported = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _unsupported = new(StringComparer.Ordinal);

    private LoraTargets()
    {
    }

    /// <summary>Module name → (in features, out features) of every projection an adapter may change.</summary>
    public IReadOnlyDictionary<string, (long In, long Out)> Supported => _supported;

    /// <summary>Module name → why an adapter may not change it (it exists in the model).</summary>
    public IReadOnlyDictionary<string, string> Unsupported => _unsupported;

    public static LoraTargets Of(DeepSeekConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var targets = new LoraTargets();
        long hidden = config.HiddenSize, heads = config.NumAttentionHeads;
        for (var i = 0; i < config.NumHiddenLayers; i++)
        {
            var layer = "model.layers." + i.ToString(CultureInfo.InvariantCulture);
            var attention = layer + ".self_attn.";
            if (config.QLoraRank is { } qRank)
            {
                targets._supported[attention + "q_a_proj"] = (hidden, qRank);
                targets._supported[attention + "q_b_proj"] = (qRank, heads * config.QkHeadDim);
            }
            else
            {
                targets._supported[attention + "q_proj"] = (hidden, heads * config.QkHeadDim);
            }
            targets._supported[attention + "kv_a_proj_with_mqa"] = (hidden, config.KvLoraRank + config.QkRopeHeadDim);
            targets._unsupported[attention + "kv_b_proj"] =
                "kv_b_proj is absorbed into the attention of decode steps (its weight multiplies queries and cached latents directly), so no adapter can be added to its output";
            targets._supported[attention + "o_proj"] = (heads * config.VHeadDim, hidden);
            var mlp = layer + ".mlp.";
            if (config.IsMoeLayer(i))
            {
                long shared = (long)config.MoeIntermediateSize * config.NSharedExperts;
                if (shared > 0) Mlp(targets, mlp + "shared_experts.", hidden, shared);
                for (var e = 0; e < config.NRoutedExperts; e++)
                    foreach (var projection in new[] { "gate_proj", "up_proj", "down_proj" })
                        targets._unsupported[mlp + "experts." + e.ToString(CultureInfo.InvariantCulture) + "." + projection] =
                            "routed experts are computed as stacked grouped products, which take no per-request adapter";
                targets._unsupported[mlp + "gate"] = "the router is not a projection an adapter may change";
            }
            else
            {
                Mlp(targets, mlp, hidden, config.IntermediateSize);
            }
        }
        targets._unsupported["lm_head"] = "lm_head is not adapted (its logits are shared by every request of a step)";
        targets._unsupported["model.embed_tokens"] = "embeddings are not adapted";
        return targets;
    }

    private static void Mlp(LoraTargets targets, string prefix, long hidden, long intermediate)
    {
        targets._supported[prefix + "gate_proj"] = (hidden, intermediate);
        targets._supported[prefix + "up_proj"] = (hidden, intermediate);
        targets._supported[prefix + "down_proj"] = (intermediate, hidden);
    }

    /// <summary>Whether the model has <paramref name="module"/> at all (adaptable or not).</summary>
    public bool Has(string module) => _supported.ContainsKey(module) || _unsupported.ContainsKey(module);

    /// <summary>
    /// PEFT's matching of <c>target_modules</c>: a list entry matches a module named exactly so or ending
    /// in <c>.entry</c>; a single string is a regular expression the whole name must match;
    /// <c>all-linear</c> matches every projection.
    /// </summary>
    public static bool Matches(string module, IReadOnlyList<string> entries, bool isRegex)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(entries);
        if (isRegex) return entries.Count == 1 && Regex.IsMatch(module, "^(?:" + entries[0] + ")$", RegexOptions.None, TimeSpan.FromSeconds(1));
        return entries.Any(e => e == "all-linear" || module == e || module.EndsWith("." + e, StringComparison.Ordinal));
    }

    /// <summary>Whether any module of the model matches <paramref name="entry"/> (a list entry of <c>target_modules</c>).</summary>
    public bool AnyMatches(string entry) =>
        entry == "all-linear" || _supported.Keys.Concat(_unsupported.Keys).Any(m => Matches(m, [entry], isRegex: false));
}
