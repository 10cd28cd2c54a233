using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Makes the replica ready only once the backend has loaded and run its warm-up step; a failed
/// warm-up stops the process, so the pod restarts instead of idling unready.
/// </summary>
public sealed partial class BackendWarmUp(IInferenceBackend backend, Readiness readiness, IHostApplicationLifetime lifetime, ILogger<BackendWarmUp> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await backend.WarmUpAsync(stoppingToken);
            readiness.MarkReady();
            LogReady(logger, backend.Model.ServedName);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // The engine service has said why already when it failed the load itself.
            if (readiness.State != ReadinessState.Failed) LogWarmUpFailed(logger, e, backend.Model.ServedName);
            readiness.MarkFailed();
            // Once the host has started (at once if it has), as EngineService does: stopping while Kestrel binds fails the start with a trace.
            lifetime.ApplicationStarted.Register(lifetime.StopApplication);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Model} warmed up; ready")]
    private static partial void LogReady(ILogger logger, string model);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Warm-up of {Model} failed; stopping")]
    private static partial void LogWarmUpFailed(ILogger logger, Exception exception, string model);
}
