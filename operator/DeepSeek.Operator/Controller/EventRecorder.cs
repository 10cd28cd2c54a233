using System.Net;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// Events about models, aggregated as client-go's recorder does: the same reason and message on the
/// same object again raises the existing Event's count and lastTimestamp (a patch) instead of creating
/// another Event, so a failure retried for minutes is one Event with a count, not hundreds.
/// </summary>
public sealed class EventRecorder(IKubernetes client, TimeProvider time)
{
    private const int MaxRemembered = 4096;
    private readonly Lock gate = new();
    private readonly Dictionary<string, (string Name, int Count)> seen = new(StringComparer.Ordinal);
    private readonly Queue<string> order = new();

    public async Task RecordAsync(V1ObjectMeta model, string type, string reason, string message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        var ns = model.NamespaceProperty ?? "default";
        var now = time.GetUtcNow().UtcDateTime;
        var key = $"{model.Uid}\n{type}\n{reason}\n{message}";
        (string Name, int Count) known;
        lock (gate) seen.TryGetValue(key, out known);
        if (known.Name is not null)
        {
            var count = known.Count + 1;
            var patch = new V1Patch(new { count, lastTimestamp = now }, V1Patch.PatchType.MergePatch);
            try
            {
                await client.CoreV1.PatchNamespacedEventAsync(patch, known.Name, ns, cancellationToken: cancellationToken);
                Remember(key, known.Name, count);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                // Expired (events live an hour by default) or deleted: start a new one.
            }
        }
        var name = $"{model.Name}.{Guid.NewGuid():N}"[..Math.Min(253, model.Name.Length + 33)];
        await client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = V1Alpha1DeepSeekModel.GroupVersion,
                Kind = V1Alpha1DeepSeekModel.KindName,
                Name = model.Name,
                NamespaceProperty = ns,
                Uid = model.Uid,
            },
            Type = type,
            Reason = reason,
            Message = message,
            Count = 1,
            FirstTimestamp = now,
            LastTimestamp = now,
            Source = new V1EventSource { Component = ModelLabels.OperatorName },
            ReportingComponent = ModelLabels.OperatorName,
        }, ns, cancellationToken: cancellationToken);
        Remember(key, name, 1);
    }

    private void Remember(string key, string name, int count)
    {
        lock (gate)
        {
            if (!seen.ContainsKey(key))
            {
                order.Enqueue(key);
                if (order.Count > MaxRemembered) seen.Remove(order.Dequeue());
            }
            seen[key] = (name, count);
        }
    }
}
