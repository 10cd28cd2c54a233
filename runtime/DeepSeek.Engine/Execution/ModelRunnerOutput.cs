using DeepSeek.Engine.Sampling;
using DeepSeek.Model.Experts;

namespace DeepSeek.Engine.Execution;

/// <summary>
/// What one step of the runner hands back to the scheduler, on the host: the token sampled for each
/// request whose sequence samples in this step (keyed by request id, with the log-probabilities it
/// asked for), and the routed token counts of every MoE layer. No logits.
/// </summary>
public sealed record ModelRunnerOutput(IReadOnlyDictionary<string, SampledToken> Sampled, IReadOnlyList<ExpertLoad> ExpertLoads)
{
    public static ModelRunnerOutput Empty { get; } = new(new Dictionary<string, SampledToken>(), []);

    /// <summary>Host time the sampler spent building constrained requests' token masks.</summary>
    public TimeSpan MaskElapsed { get; init; }
}
