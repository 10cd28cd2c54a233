using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;

namespace DeepSeek.Model.Tests.Support;

/// <summary>
/// The V3 tiny fixture's initial placement and the one the rebalancing policy moves to under a skewed load
/// (experts 4 and 7 of both MoE layers take every pick), and each rank's staging of it: what the placement
/// switch tests of every transport start from.
/// </summary>
internal static class SkewedPlacements
{
    private static readonly long[] Skewed = [0, 0, 0, 0, 24, 0, 0, 24];

    public static (DeepSeekConfig Config, ExpertPlacement Initial, ExpertPlacement Next) Of(int ranks, int redundant)
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        var initial = ExpertPlacement.Initial(config, ranks, redundant);
        var next = RebalancePolicy.Decide(initial, [new ExpertLoad(1, Skewed), new ExpertLoad(2, Skewed)], redundant).Next
            ?? throw new InvalidOperationException("The skewed load should move experts.");
        return (config, initial, next);
    }

    /// <summary>Every MoE layer of <paramref name="model"/> staged for <paramref name="rank"/> under <paramref name="next"/>.</summary>
    public static List<(LayerMove Move, StagedExperts Staged)> Stage(DeepSeekForCausalLM model, ExpertPlacement next, int rank, SafetensorsCheckpoint checkpoint) =>
        [.. next.Layers.Select(layer => ExpertParallelism.StageLayer(model, next, layer.LayerIndex, rank, checkpoint))];
}
