using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Models;

namespace DeepSeek.Gateway.Cluster;

/// <summary>
/// Scale from zero: a request held for a public model with no ready endpoint asks each
/// <c>DeepSeekModel</c> behind it that weighs in the split and is scaled to 0 (spec.replicas 0, autoscaling
/// off) for one replica, through the model's scale subresource (a merge patch of <c>spec.replicas</c>, the
/// right HPA and KEDA use). The patch is conditional on the resourceVersion the gateway saw, so it never
/// overrides a count someone set meanwhile (409: the watch brings the new state). One patch per model and
/// version, however many requests are held: the others wait on the same one. The operator then creates the
/// pod, and discovery routes the held requests to it once it is ready.
/// </summary>
internal sealed partial class ScaleFromZero(IKubernetes client, ModelDiscovery discovery, ILogger<ScaleFromZero> logger)
{
    /// <summary>How long one patch may take; a held request waits on it no longer, and goes on holding.</summary>
    public static readonly TimeSpan PatchTimeout = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string? Version, Task Patch)> _patches = new(StringComparer.Ordinal);

    /// <summary>Scales up the models of <paramref name="model"/> that are at zero; returns when their patches are answered (never throws for them).</summary>
    public async Task WakeAsync(string model, CancellationToken cancellation)
    {
        var asleep = discovery.Sources(model).Where(s => s.Weight > 0 && s.DesiredReplicas == 0).ToList();
        if (asleep.Count == 0) return;
        List<Task> patches;
        lock (_gate)
        {
            patches = asleep.Select(source =>
            {
                if (_patches.TryGetValue(source.Key, out var known) && known.Version == source.ResourceVersion) return known.Patch;
                var patch = PatchAsync(source);
                _patches[source.Key] = (source.ResourceVersion, patch);
                return patch;
            }).ToList();
        }
        await Task.WhenAll(patches).WaitAsync(cancellation);
    }

    private async Task PatchAsync(VariantSource source)
    {
        // Off the caller's stack and its cancellation: the patch is shared by every request held for the model.
        await Task.Yield();
        var body = new JsonObject
        {
            ["metadata"] = new JsonObject { ["resourceVersion"] = source.ResourceVersion },
            ["spec"] = new JsonObject { ["replicas"] = 1 },
        };
        using var deadline = new CancellationTokenSource(PatchTimeout);
        try
        {
            await client.CustomObjects.PatchNamespacedCustomObjectScaleAsync(new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch),
                V1Alpha1DeepSeekModel.Group, V1Alpha1DeepSeekModel.Version, source.Namespace, V1Alpha1DeepSeekModel.Plural, source.Name, cancellationToken: deadline.Token);
            LogScaled(logger, source.Key);
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException or OperationCanceledException)
        {
            var status = (e as k8s.Autorest.HttpOperationException)?.Response.StatusCode;
            LogFailed(logger, source.Key, status is null ? e.Message : $"{(int)status} {e.Message}");
            // Not remembered as done: the next held request tries again (a 409 comes with a new version to try from).
            lock (_gate)
            {
                if (_patches.TryGetValue(source.Key, out var known) && known.Version == source.ResourceVersion) _patches.Remove(source.Key);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Scale from zero: {Model} scaled to 1 replica for a held request")]
    private static partial void LogScaled(ILogger logger, string model);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Scale from zero: patching the scale of {Model} failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string model, string error);
}
