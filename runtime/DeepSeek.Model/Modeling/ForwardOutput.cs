using DeepSeek.Model.Experts;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// What one forward returns: logits <c>[rows, vocab]</c> for the rows the batch asked for (the
/// caller owns and disposes them), and the routed token count per expert of every MoE layer.
/// </summary>
public sealed record ForwardOutput(Tensor Logits, IReadOnlyList<ExpertLoad> ExpertLoads) : IDisposable
{
    public void Dispose() => Logits.Dispose();
}
