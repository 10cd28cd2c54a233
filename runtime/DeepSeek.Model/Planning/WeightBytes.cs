using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Planning;

/// <summary>
/// A model's weight bytes in one <see cref="WeightFormat"/>, split the way expert parallelism splits
/// them: what every rank holds (embeddings, attention with its MLA projections and norms, the dense
/// MLP layers, shared experts, routers, final norm, LM head) and what one routed expert costs over
/// all MoE layers (a rank holds a shard of those). Counted from the shapes of the model as
/// <see cref="DeepSeekForCausalLM.Build"/> declares it, so multi-token-prediction layers a
/// checkpoint ships but inference does not run are not counted.
/// </summary>
public sealed record WeightBytes(WeightFormat Format, long Parameters, long Replicated, long PerRoutedExpert, int RoutedExperts)
{
    /// <summary>Every weight once: what one rank holding all experts needs.</summary>
    public long Total => Replicated + (PerRoutedExpert * RoutedExperts);

    public static WeightBytes Of(DeepSeekConfig config, WeightFormat format)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(format);
        // Declared on the meta device: shapes without memory, so a 671 B model costs nothing here.
        using var declared = DeepSeekForCausalLM.Build(config, ScalarType.BFloat16);
        long replicated = 0, routed = 0;
        foreach (var (name, module) in declared.named_modules())
        {
            var bytes = format.HeldBytes(name, module);
            if (module is RoutedExperts) routed += bytes;
            else replicated += bytes;
        }
        var experts = routed == 0 ? 0 : config.NRoutedExperts;
        // Every format prices experts alike, so each MoE layer's stack is a multiple of the expert count.
        if (experts > 0 && routed % experts != 0)
            throw new InvalidOperationException($"{format}: {routed} bytes of routed experts do not split evenly over {experts} experts.");
        return new WeightBytes(format, declared.ParameterCount, replicated, experts == 0 ? 0 : routed / experts, experts);
    }
}
