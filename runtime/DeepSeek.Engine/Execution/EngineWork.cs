namespace DeepSeek.Engine.Execution;

/// <summary>An item of the engine's input channel: a request (<see cref="ActiveRequest"/>), a warm-up, or a wake-up.</summary>
internal abstract class EngineWork
{
    internal sealed class Submit(ActiveRequest request) : EngineWork
    {
        public ActiveRequest Request { get; } = request;
    }

    internal sealed class WarmUp : EngineWork
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Makes an idle engine look at its flags (cancel everything, stop).</summary>
    internal sealed class Wake : EngineWork
    {
        public static Wake Instance { get; } = new();
    }
}
