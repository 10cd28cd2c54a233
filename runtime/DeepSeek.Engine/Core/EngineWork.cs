using DeepSeek.Engine.Output;

namespace DeepSeek.Engine.Core;

/// <summary>An item of the engine's input channel: a request (<see cref="ActiveRequest"/>), a warm-up, or a wake-up.</summary>
internal abstract class EngineWork
{
    /// <summary>One request, or several admitted together that may share their first step.</summary>
    internal sealed class Submit(ActiveRequest[] requests) : EngineWork
    {
        public IReadOnlyList<ActiveRequest> Requests { get; } = requests;
    }

    internal sealed class WarmUp : EngineWork
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Embeddings of whole inputs, computed between steps (see <see cref="Execution.IModelRunner.Embed"/>).</summary>
    internal sealed class Embed(IReadOnlyList<IReadOnlyList<int>> inputs, CancellationToken cancellation) : EngineWork
    {
        public IReadOnlyList<IReadOnlyList<int>> Inputs { get; } = inputs;

        public CancellationToken Cancellation { get; } = cancellation;

        public TaskCompletionSource<float[][]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Work on the model's thread between two steps (an expert-parallel group switching placement).</summary>
    internal sealed class BetweenSteps(Action work) : EngineWork
    {
        public Action Work { get; } = work;
    }

    /// <summary>Makes an idle engine look at its flags (cancel everything, stop).</summary>
    internal sealed class Wake : EngineWork
    {
        public static Wake Instance { get; } = new();
    }
}
