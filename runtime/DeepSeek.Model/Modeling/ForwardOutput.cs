using DeepSeek.Model.Experts;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// What one forward returns: logits <c>[rows, vocab]</c> for the rows the batch asked for (the
/// caller owns and disposes them), and the routed token count per expert of every MoE layer.
/// </summary>
/// <remarks>
/// The counts stay on the device until <see cref="ExpertLoads"/> is first read: that read is the
/// forward's one synchronisation, so a caller that first queues what follows (the step's sampling)
/// lets the host's share of that work run while the device still computes the forward. Read them before
/// the next forward: a captured decode step's counts live in its graph's static output.
/// </remarks>
public sealed class ForwardOutput : IDisposable
{
    private readonly Tensor _counts;
    private readonly bool _ownsCounts;
    private readonly Func<Tensor, IReadOnlyList<ExpertLoad>> _read;
    private IReadOnlyList<ExpertLoad>? _loads;

    /// <param name="logits">Owned by this output from now on.</param>
    /// <param name="counts">Stacked counts <c>[MoE layers, n_routed_experts]</c> on the device.</param>
    /// <param name="ownsCounts">Whether disposing this output frees <paramref name="counts"/> (false for a graph's static output).</param>
    /// <param name="read">Copies the counts to the host as per-layer loads.</param>
    internal ForwardOutput(Tensor logits, Tensor counts, bool ownsCounts, Func<Tensor, IReadOnlyList<ExpertLoad>> read)
    {
        Logits = logits;
        _counts = counts;
        _ownsCounts = ownsCounts;
        _read = read;
    }

    public Tensor Logits { get; }

    /// <summary>The routed (token, expert) pairs each expert of each MoE layer received, read from the device on first use.</summary>
    public IReadOnlyList<ExpertLoad> ExpertLoads => _loads ??= _read(_counts);

    public void Dispose()
    {
        Logits.Dispose();
        if (_ownsCounts) _counts.Dispose();
    }
}
