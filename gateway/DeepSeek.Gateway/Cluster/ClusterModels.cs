using System.Net;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Autoscaling;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Gateway.Cluster;

/// <summary>One public model found in the cluster: its table entry and the <c>DeepSeekModel</c>s behind its variants.</summary>
internal sealed record DiscoveredModel(ModelConfig Config, IReadOnlyList<VariantSource> Sources);

/// <summary>
/// A <c>DeepSeekModel</c> behind a variant, as last seen: what scale from zero needs (its desired replicas,
/// and the resourceVersion its patch is conditional on).
/// </summary>
internal sealed record VariantSource(string Namespace, string Name, string? ResourceVersion, int DesiredReplicas, int Weight)
{
    public string Key => Namespace + "/" + Name;
}

/// <summary>
/// The cluster's models as the gateway's model table (pure). Public name: <c>spec.model.servedName</c>, else
/// the resource's name; each of <c>spec.adapters</c> is published under its own name too, on the model's pods
/// (the runtime serves an adapter under that name). Models sharing a public name, in any of the watched namespaces, are the variants of
/// one (named <c>namespace/name</c>), weighted by <c>spec.gateway.weight</c>; a public model whose variants
/// all weigh 0 is not published. A variant's endpoints are the ready pods that take its requests, by the
/// operator's own rule (<see cref="ReplicaTargets.ServingPods"/>: every pod of a one-pod replica, the leader
/// of a replica group, every rank with data-parallel attention), at their pod IP and <c>http</c> port.
/// A model whose spec cannot be read is left out (the operator reports it in its status).
/// </summary>
internal static class ClusterModels
{
    public static IReadOnlyList<DiscoveredModel> From(IEnumerable<DeepSeekModelDocument> documents, Func<string, string, IReadOnlyList<V1Pod>> podsOf, ModelSettings settings)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(podsOf);
        ArgumentNullException.ThrowIfNull(settings);
        var models = new List<(string Public, V1Alpha1DeepSeekModel Model)>();
        foreach (var document in documents)
        {
            if (document.Metadata?.Name is not { Length: > 0 } || document.Metadata.DeletionTimestamp is not null) continue;
            var (model, errors) = ModelReader.Read(document);
            if (errors.Count > 0) continue;
            models.Add((PublicName(model), model));
            // Each LoRA adapter is a model of its own to clients, served by the same pods under its name.
            foreach (var adapter in model.Spec.Adapters ?? []) models.Add((adapter.Name, model));
        }
        return models
            .GroupBy(m => m.Public, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => Publish(g.Key, g.Select(m => m.Model).OrderBy(m => Namespace(m), StringComparer.Ordinal).ThenBy(m => m.Metadata.Name, StringComparer.Ordinal).ToList(), podsOf, settings))
            .OfType<DiscoveredModel>()
            .ToList();
    }

    public static string PublicName(V1Alpha1DeepSeekModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Spec.Model?.ServedName is { Length: > 0 } served ? served : model.Metadata.Name;
    }

    /// <summary>Base URLs of the model's ready serving pods, in the order of its replicas.</summary>
    public static List<string> ReadyEndpoints(V1Alpha1DeepSeekModel model, IReadOnlyList<V1Pod> pods)
    {
        ArgumentNullException.ThrowIfNull(model);
        return ReplicaTargets.ServingPods(model.Metadata.Name, ModelShape.Of(model), pods)
            .Select(s => s.Pod)
            .OfType<V1Pod>()
            .Where(ReplicaTargets.IsReady)
            .Select(p => IPAddress.TryParse(p.Status?.PodIP, out var ip) ? new UriBuilder(Uri.UriSchemeHttp, ip.ToString(), ReplicaTargets.HttpPort(p)).Uri.GetLeftPart(UriPartial.Authority) : null)
            .OfType<string>()
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();
    }

    private static DiscoveredModel? Publish(string name, List<V1Alpha1DeepSeekModel> models, Func<string, string, IReadOnlyList<V1Pod>> podsOf, ModelSettings settings)
    {
        if (models.All(m => Weight(m) <= 0)) return null;
        var variants = models.Select(m => new VariantConfig
        {
            Name = Namespace(m) + "/" + m.Metadata.Name,
            Weight = Weight(m),
            Endpoints = ReadyEndpoints(m, podsOf(Namespace(m), m.Metadata.Name)),
        }).ToList();
        var sources = models.Select(m => new VariantSource(Namespace(m), m.Metadata.Name, m.Metadata.ResourceVersion, ModelShape.DesiredReplicas(m), Weight(m))).ToList();
        return new DiscoveredModel(settings.For(name, variants), sources);
    }

    private static int Weight(V1Alpha1DeepSeekModel model) => model.Spec.Gateway?.Weight ?? GatewaySpec.DefaultWeight;

    private static string Namespace(V1Alpha1DeepSeekModel model) => model.Metadata.NamespaceProperty ?? "default";
}
