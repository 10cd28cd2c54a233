using DeepSeek.Engine.Scheduling;
using DeepSeek.Model.Configuration;

namespace DeepSeek.Engine.Execution;

/// <summary>
/// The device side of the engine, as the core drives it: one step (forward and sampling), embeddings,
/// a warm-up. <see cref="ModelRunner"/> is the one implementation that serves; the interface is the
/// seam the core's failure handling is tested through (a runner whose step throws). Engine thread only.
/// </summary>
internal interface IModelRunner : IDisposable
{
    DeepSeekConfig Config { get; }

    /// <summary>KV blocks of the cache this runner owns.</summary>
    int NumBlocks { get; }

    /// <summary>Runs the step's forward and samples each sampling sequence's next token.</summary>
    ModelRunnerOutput Execute(SchedulerStep step);

    /// <summary>The L2-normalised mean of the final hidden states of <paramref name="tokenIds"/>, in a cache of its own.</summary>
    float[] Embed(IReadOnlyList<int> tokenIds);

    /// <summary>One short forward through block <paramref name="blockId"/> of the cache, so the first request does not pay for lazy initialisation.</summary>
    void WarmUp(int blockId);

    /// <summary>
    /// While the engine has no forward of its own to run: in a lockstep group, one agreement with the peers
    /// and, when one of them steps, that forward's exchanges with nothing of this rank's own.
    /// </summary>
    LockstepTurn IdleTurn() => LockstepTurn.Solo;
}
