using DeepSeek.Model.Configuration;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Layers;

/// <summary>
/// The router (<c>mlp.gate</c>): scores every routed expert per token and picks the top k.
/// V2: softmax scores, greedy (or group-limited greedy) top-k. V3: sigmoid scores, selection on
/// scores + <c>e_score_correction_bias</c> restricted to the best <c>topk_group</c> of
/// <c>n_group</c> groups (each group scored by its two best experts), weights from the unbiased
/// scores. Then optional renormalisation and <c>routed_scaling_factor</c>. Routing runs in float32
/// (float64 for a float64 model) whatever the model dtype, as transformers does.
/// </summary>
public sealed class MoeGate : nn.Module<Tensor, (Tensor ExpertIds, Tensor Weights)>
{
    private readonly Parameter weight;
    private readonly Tensor? e_score_correction_bias;
    private readonly DeepSeekConfig _config;
    private readonly ScalarType _routingType;

    public MoeGate(string name, DeepSeekConfig config, ScalarType dtype, Device device) : base(name)
    {
        _config = config;
        _routingType = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        weight = new Parameter(empty([config.NRoutedExperts, config.HiddenSize], _routingType, device), requires_grad: false);
        if (config.TopkMethod == "noaux_tc")
            e_score_correction_bias = zeros([config.NRoutedExperts], _routingType, device);
        RegisterComponents();
    }

    public override (Tensor ExpertIds, Tensor Weights) forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var c = _config;
        var tokens = hidden.shape[0];
        var logits = nn.functional.linear(hidden.to(_routingType), weight);
        var scores = c.ScoringFunc == "sigmoid" ? logits.sigmoid() : logits.softmax(-1);
        var groupSize = c.NRoutedExperts / c.NGroup;

        Tensor ids, weights;
        switch (c.TopkMethod)
        {
            case "noaux_tc":
            {
                var choice = scores + e_score_correction_bias!;
                var groupScores = choice.view(tokens, c.NGroup, groupSize).topk(2, -1).values.sum(-1);
                var candidates = MaskToBestGroups(choice, groupScores, tokens, groupSize);
                ids = candidates.topk(c.NumExpertsPerTok, -1, largest: true, sorted: false).indexes;
                weights = scores.gather(1, ids);
                break;
            }
            case "group_limited_greedy":
            {
                var groupScores = scores.view(tokens, c.NGroup, groupSize).max(-1).values;
                var candidates = MaskToBestGroups(scores, groupScores, tokens, groupSize);
                (weights, ids) = candidates.topk(c.NumExpertsPerTok, -1, largest: true, sorted: false);
                break;
            }
            default:
                (weights, ids) = scores.topk(c.NumExpertsPerTok, -1, largest: true, sorted: false);
                break;
        }
        if (c.NormTopkProb) weights = weights / (weights.sum(-1, keepdim: true) + 1e-20);
        weights = (weights * c.RoutedScalingFactor).to(hidden.dtype);
        return (ids.MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope());
    }

    /// <summary>Zeroes (as the reference does, not −∞) every expert outside the best topk_group groups.</summary>
    private Tensor MaskToBestGroups(Tensor scores, Tensor groupScores, long tokens, long groupSize)
    {
        var best = groupScores.topk(_config.TopkGroup, -1, largest: true, sorted: false).indexes;
        var groupMask = zeros_like(groupScores).scatter_(1, best, ones_like(best, dtype: groupScores.dtype));
        var expertMask = groupMask.unsqueeze(-1).expand(tokens, _config.NGroup, groupSize).reshape(tokens, _config.NRoutedExperts);
        return scores.masked_fill(expertMask.eq(0), 0.0);
    }
}
