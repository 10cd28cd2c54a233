using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Cluster;

/// <summary>
/// What the cluster's Kubernetes version offers the objects the operator creates (docs/operator.md,
/// "Supported Kubernetes versions"), and the refusal of a model that needs what the cluster lacks.
/// Pure: the version is read once from the API server's /version at start.
/// </summary>
public sealed partial record ClusterFeatures(Version Kubernetes)
{
    /// <summary>
    /// The oldest supported release: the preStop sleep action every runtime pod uses is on by default
    /// from 1.30 (beta; GA in 1.34), the pod-index label multi-pod groups read their rank from from 1.28,
    /// and the CRD's validation rules use fieldPath (1.28).
    /// </summary>
    public static readonly Version OldestSupported = new(1, 30);

    /// <summary>Image volumes (model.source.image): the ImageVolume feature gate exists from 1.31 and is on by default from 1.35.</summary>
    public static readonly Version ImageVolumesFrom = new(1, 31);
    public static readonly Version ImageVolumesOnByDefaultFrom = new(1, 35);

    /// <summary>When the version is unknown (a render without a cluster), everything is assumed present.</summary>
    public static ClusterFeatures Any { get; } = new(new Version(int.MaxValue, 0));

    /// <summary>Parses /version's major and minor (minor may carry a suffix such as "30+" on managed clusters).</summary>
    public static ClusterFeatures FromVersion(string? major, string? minor)
    {
        var majorNumber = int.TryParse(Digits().Match(major ?? "").Value, NumberStyles.None, CultureInfo.InvariantCulture, out var ma) ? ma : 0;
        var minorNumber = int.TryParse(Digits().Match(minor ?? "").Value, NumberStyles.None, CultureInfo.InvariantCulture, out var mi) ? mi : 0;
        return new ClusterFeatures(new Version(majorNumber, minorNumber));
    }

    public bool Supported => Kubernetes >= OldestSupported;

    /// <summary>Why this cluster cannot run <paramref name="model"/>, or null when it can.</summary>
    public string? Refusal(DeepSeekModelSpec model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!Supported)
            return $"Kubernetes {Kubernetes} is older than {OldestSupported}, the oldest this operator supports: runtime pods use the preStop sleep action (on by default from 1.30). Upgrade the cluster.";
        if (model.Model?.Source?.Image is not null && Kubernetes < ImageVolumesFrom)
            return $"model.source.image needs image volumes, which Kubernetes {Kubernetes} lacks (from 1.31 with the ImageVolume feature gate, on by default from 1.35). Use model.source.pvc or hostPath, or upgrade the cluster.";
        return null;
    }

    /// <summary>
    /// With image volumes requested on 1.31–1.34, the gate may be off: the API server then drops the
    /// volume's image field and refuses the workload. Its message is turned into this explanation.
    /// </summary>
    public string? ExplainRefusedWorkload(DeepSeekModelSpec model, string apiServerMessage)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Model?.Source?.Image is null || !apiServerMessage.Contains("volumes", StringComparison.Ordinal)) return null;
        return $"The API server refused the model's image volume ({apiServerMessage}). Image volumes need the ImageVolume feature gate on the API server and kubelets (on by default from 1.35; this cluster runs {Kubernetes}).";
    }

    /// <summary>
    /// With the ImageVolume gate off (the default on 1.31–1.34) the API server does not refuse a workload
    /// with an image volume: it drops the volume and its mounts as a disabled field and stores the rest,
    /// so its pods would start without <c>/models</c>. Found by comparing a workload the operator wrote
    /// from this very spec (same spec-hash annotation in <paramref name="stored"/>) with <paramref name="desired"/>:
    /// the explanation, or null when every image volume the operator asked for was kept.
    /// </summary>
    public string? DroppedImageVolume(IEnumerable<IKubernetesObject<V1ObjectMeta>> desired, IEnumerable<IKubernetesObject<V1ObjectMeta>> stored)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(stored);
        var byKey = stored.GroupBy(Controller.ChildPlan.Key).ToDictionary(g => g.Key, g => g.First());
        foreach (var want in desired)
        {
            var images = TemplateOf(want)?.Spec?.Volumes?.Where(v => v.Image is not null).Select(v => v.Name).ToList();
            if (images is not { Count: > 0 } || !byKey.TryGetValue(Controller.ChildPlan.Key(want), out var have) || SpecHash(have) != SpecHash(want)) continue;
            var kept = TemplateOf(have)?.Spec?.Volumes?.Where(v => v.Image is not null).Select(v => v.Name).ToHashSet() ?? [];
            if (images.FirstOrDefault(name => !kept.Contains(name)) is { } dropped)
                return $"The API server stored {want.Kind} {want.Metadata.Name} without its image volume '{dropped}' (model.source.image): the ImageVolume feature gate is off on this cluster "
                    + $"(Kubernetes {this}; on by default from {ImageVolumesOnByDefaultFrom.Major}.{ImageVolumesOnByDefaultFrom.Minor}), so its pods would start without the model. "
                    + "Enable the gate on the API server and kubelets, or use model.source.pvc or hostPath.";
        }
        return null;
    }

    private static V1PodTemplateSpec? TemplateOf(IKubernetesObject<V1ObjectMeta> workload) => workload switch
    {
        V1Deployment deployment => deployment.Spec?.Template,
        V1StatefulSet set => set.Spec?.Template,
        _ => null,
    };

    private static string? SpecHash(IKubernetesObject<V1ObjectMeta> item) =>
        item.Metadata.Annotations is { } annotations && annotations.TryGetValue(ModelLabels.SpecHash, out var hash) ? hash : null;

    public override string ToString() => $"{Kubernetes.Major}.{Kubernetes.Minor}";

    [GeneratedRegex("^[0-9]+")]
    private static partial Regex Digits();
}
