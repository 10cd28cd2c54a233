using DeepSeek.Engine;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// The engine inside the web host. Starts loading when the host starts (so <c>/health</c> answers
/// during a long load) and warms it up; <see cref="BackendWarmUp"/> marks readiness once
/// <see cref="Engine"/> completes. On shutdown it drains the engine before the server stops
/// listening, so requests arriving meanwhile get 503 / UNAVAILABLE rather than a refused connection.
/// </summary>
public sealed class EngineHost(EngineSettings settings, Readiness readiness, EngineMetrics metrics, IHostApplicationLifetime lifetime, ILogger<EngineHost> logger)
    : IHostedLifecycleService, IAsyncDisposable
{
    private readonly TaskCompletionSource<InferenceEngine> _engine = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the warmed-up engine (what the API adapters call), or faults if loading failed.</summary>
    public Task<InferenceEngine> Engine => _engine.Task;

    /// <summary>The tokenizer of the served model, when its folder has a tokenizer.json.</summary>
    public BpeTokenizer? Tokenizer { get; } = CheckpointEngine.LoadTokenizer(settings.ModelDirectory);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Task.Run(LoadAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task LoadAsync()
    {
        try
        {
            var directory = settings.ModelDirectory;
            var engine = await CheckpointEngine.StartAsync(directory, settings.DType, settings.Options, Tokenizer, metrics).ConfigureAwait(false);
            await engine.WarmUpAsync().ConfigureAwait(false);
            if (logger.IsEnabled(LogLevel.Information))
                logger.LogInformation("Model {Model} loaded in {Seconds:0.0} s and warmed up; KV cache {Blocks} blocks of {BlockSize} tokens, context {Context}.",
                directory, engine.ModelLoadTime.TotalSeconds, engine.NumKvBlocks, settings.Options.BlockSize, engine.MaxContextTokens);
            _engine.TrySetResult(engine);
        }
        catch (Exception e)
        {
            logger.LogCritical(e, "Loading the model failed; the process stops.");
            _engine.TrySetException(e);
            lifetime.StopApplication();
        }
    }

    /// <summary>Runs before any hosted service stops, Kestrel included: the server still answers while in-flight requests finish.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        readiness.MarkDraining();
        if (!_engine.Task.IsCompletedSuccessfully) return;
        if (logger.IsEnabled(LogLevel.Information))
            logger.LogInformation("Draining: finishing in-flight requests for up to {Seconds} s.", settings.DrainTimeout.TotalSeconds);
        await _engine.Task.Result.DrainAsync(settings.DrainTimeout).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_engine.Task.IsCompletedSuccessfully) await _engine.Task.Result.DisposeAsync().ConfigureAwait(false);
    }
}
