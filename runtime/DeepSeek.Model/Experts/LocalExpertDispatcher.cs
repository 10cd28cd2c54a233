using DeepSeek.Model.Layers;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Computes routed experts in this process. Token–expert pairs are sorted by expert so each active
/// expert runs once on all its tokens (one matmul chain per active expert, never per token), then
/// weighted outputs are summed back per token with one <c>index_add</c>.
/// </summary>
public sealed class LocalExpertDispatcher(IReadOnlyDictionary<int, DenseMlp> experts) : IExpertDispatcher
{
    public Tensor Dispatch(RoutedTokens tokens)
    {
        using var scope = NewDisposeScope();
        var topK = tokens.ExpertIds.shape[1];
        var flatIds = tokens.ExpertIds.reshape(-1);
        var order = flatIds.argsort(0, false);
        var tokenOfPair = order.div(topK, rounding_mode: RoundingMode.floor);
        var inputs = tokens.Hidden.index_select(0, tokenOfPair);
        var weights = tokens.Weights.reshape(-1).index_select(0, order).unsqueeze(1);

        var outputs = new List<Tensor>();
        long offset = 0;
        for (var expert = 0; expert < tokens.TokensPerExpert.Length; expert++)
        {
            var count = tokens.TokensPerExpert[expert];
            if (count == 0) continue;
            if (!experts.TryGetValue(expert, out var mlp))
                throw new InvalidOperationException($"Layer {tokens.LayerIndex} routed tokens to expert {expert}, which is not loaded in this process.");
            outputs.Add(mlp.forward(inputs.narrow(0, offset, count)));
            offset += count;
        }
        var combined = cat(outputs, 0).mul_(weights);
        return zeros_like(tokens.Hidden).index_add_(0, tokenOfPair, combined, 1).MoveToOuterDisposeScope();
    }
}
