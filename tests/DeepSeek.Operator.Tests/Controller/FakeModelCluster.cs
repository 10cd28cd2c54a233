using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Controller;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Controller;

/// <summary>
/// The reconciler's cluster in memory: one model, no children or pods in the caches, writes recorded.
/// <see cref="ApplyFault"/> and <see cref="StatusFault"/> make writes fail as an API server would.
/// </summary>
internal sealed class FakeModelCluster : IModelCluster
{
    public DeepSeekModelDocument? Model { get; set; }
    public List<ChildAction> Applied { get; } = [];
    public List<(string Type, string Reason, string Message)> Events { get; } = [];
    public int StatusWrites { get; private set; }

    /// <summary>The error a write of the plan fails with, if any (null: it succeeds).</summary>
    public Func<ChildAction, Exception?> ApplyFault { get; set; } = _ => null;

    /// <summary>The error every status write fails with (null: it succeeds).</summary>
    public Exception? StatusFault { get; set; }

    /// <summary>Secrets by name: read by GET, never from a cache.</summary>
    public Dictionary<string, V1Secret> Secrets { get; } = [];
    public List<V1Secret> CreatedSecrets { get; } = [];

    public static HttpOperationException ApiError(HttpStatusCode status, string message) =>
        new(message) { Response = new HttpResponseMessageWrapper(new HttpResponseMessage(status), message) };

    public DeepSeekModelDocument? GetModel(string ns, string name) => Model;
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Children(string ns, string model) => [];
    public IReadOnlyList<V1Pod> Pods(string ns, string model) => [];
    public Task<IReadOnlyList<Corev1Event>> WarningsAboutAsync(IKubernetesObject<V1ObjectMeta> workload, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<Corev1Event>>([]);

    public Task WriteStatusAsync(V1ObjectMeta model, DeepSeekModelStatus status, CancellationToken cancellationToken)
    {
        lock (Events) StatusWrites++;
        return StatusFault is null ? Task.CompletedTask : Task.FromException(StatusFault);
    }

    public Task RecordEventAsync(V1ObjectMeta model, string type, string reason, string message, CancellationToken cancellationToken)
    {
        lock (Events) Events.Add((type, reason, message));
        return Task.CompletedTask;
    }

    public Task ApplyAsync(ChildAction action, CancellationToken cancellationToken)
    {
        if (ApplyFault(action) is { } fault) return Task.FromException(fault);
        lock (Applied) Applied.Add(action);
        return Task.CompletedTask;
    }

    public Task<V1Secret?> ReadSecretAsync(string ns, string name, CancellationToken cancellationToken) => Task.FromResult(Secrets.GetValueOrDefault(name));

    public Task CreateSecretAsync(V1Secret secret, CancellationToken cancellationToken)
    {
        Secrets.Add(secret.Metadata.Name, secret);
        CreatedSecrets.Add(secret);
        return Task.CompletedTask;
    }
}
