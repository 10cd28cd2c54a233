using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Experts;

/// <summary>Runs work on the thread that owns a model (dispose scopes are per thread, and one thread keeps the device's work in order).</summary>
public interface IModelThread
{
    Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken);
}

/// <summary>The engine thread of a process that serves its own requests: work runs between two of its steps.</summary>
public sealed class EngineModelThread(EngineService engine) : IModelThread
{
    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        var inference = await engine.Loaded.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await inference.RunBetweenStepsAsync(work).WaitAsync(cancellationToken).ConfigureAwait(false);
    }
}
