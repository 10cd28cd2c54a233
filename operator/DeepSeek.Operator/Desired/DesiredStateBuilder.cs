using DeepSeek.Contract;
using System.Globalization;
using DeepSeek.Operator.Api.V1Alpha1;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>
/// The objects a (validated) DeepSeekModel should own — a pure function of the model and the
/// operator's defaults. One pod per replica: a Deployment. Several: one StatefulSet and headless
/// Service per replica group, so a group is created, scaled and deleted as a whole, plus the group
/// token Secret and the NetworkPolicy that fence the expert port.
/// </summary>
public static class DesiredStateBuilder
{
    public static DesiredState Build(V1Alpha1DeepSeekModel model, OperatorDefaults defaults)
    {
        var name = model.Metadata.Name;
        var shape = ModelShape.Of(model);
        var objects = new List<IKubernetesObject<V1ObjectMeta>>();
        var settings = RuntimeSettings(model);
        var configHash = SpecHash.Of(settings.Data);
        objects.Add(settings);

        // Ensured before the workloads (their pods read it), and never replaced or deleted: not one of the objects.
        var groupToken = shape.IsExpertParallel ? GroupSecurity.TokenSecret(Metadata(model, ObjectNames.GroupToken(name))) : null;
        if (shape.IsExpertParallel)
        {
            // Before the workloads: their pods must never run unfenced.
            objects.Add(GroupSecurity.NetworkPolicy(Metadata(model, ObjectNames.ExpertNetworkPolicy(name)), ModelLabels.Selector(name)));
        }
        if (!shape.IsMultiPod)
        {
            objects.Add(new V1Deployment
            {
                ApiVersion = "apps/v1",
                Kind = "Deployment",
                Metadata = Metadata(model, ObjectNames.Deployment(name)),
                Spec = new V1DeploymentSpec
                {
                    Replicas = shape.Replicas,
                    Selector = new V1LabelSelector { MatchLabels = ModelLabels.Selector(name) },
                    Strategy = new V1DeploymentStrategy
                    {
                        Type = "RollingUpdate",
                        // GPUs are scarce: replace one pod at a time rather than ask for a spare GPU node.
                        RollingUpdate = new V1RollingUpdateDeployment { MaxSurge = "0", MaxUnavailable = "1" },
                    },
                    Template = PodTemplateBuilder.Build(model, defaults, PodLabels(name, group: null), configHash, group: null),
                },
            });
            objects.Add(Service(model, ObjectNames.Service(name), ModelLabels.Selector(name), headless: false));
        }
        else
        {
            for (var k = 0; k < shape.Replicas; k++)
            {
                var group = ObjectNames.Group(name, k);
                var groupSelector = GroupSelector(name, k);
                objects.Add(Service(model, group, groupSelector, headless: true));
                objects.Add(new V1StatefulSet
                {
                    ApiVersion = "apps/v1",
                    Kind = "StatefulSet",
                    Metadata = Metadata(model, group, k),
                    Spec = new V1StatefulSetSpec
                    {
                        Replicas = shape.PodsPerReplica,
                        ServiceName = group,
                        // The ranks of a group start together: no rank waits for the one before to be ready.
                        PodManagementPolicy = "Parallel",
                        Selector = new V1LabelSelector { MatchLabels = groupSelector },
                        Template = PodTemplateBuilder.Build(model, defaults, PodLabels(name, k), configHash, k),
                    },
                });
            }
            // Clients talk to the leader (rank 0) of every group; with data-parallel attention, to every rank.
            var serving = ModelLabels.Selector(name);
            if (!shape.DataParallelAttention) serving[ModelLabels.PodIndex] = "0";
            objects.Add(Service(model, ObjectNames.Service(name), serving, headless: false));
        }

        objects.Add(new V1PodDisruptionBudget
        {
            ApiVersion = "policy/v1",
            Kind = "PodDisruptionBudget",
            Metadata = Metadata(model, ObjectNames.DisruptionBudget(name)),
            Spec = new V1PodDisruptionBudgetSpec
            {
                // Voluntary evictions take one model pod at a time (a whole group stops serving when one of its ranks goes).
                MaxUnavailable = "1",
                Selector = new V1LabelSelector { MatchLabels = ModelLabels.Selector(name) },
            },
        });

        foreach (var item in objects) Stamp(item);
        return new DesiredState(objects, groupToken);
    }

    /// <summary>The in-cluster URL of the model's HTTP API.</summary>
    public static string Endpoint(V1Alpha1DeepSeekModel model) =>
        $"http://{ObjectNames.Service(model.Metadata.Name)}.{model.Metadata.NamespaceProperty ?? "default"}.svc:{RuntimeContract.Http}";

    private static V1ConfigMap RuntimeSettings(V1Alpha1DeepSeekModel model)
    {
        var spec = model.Spec;
        var shape = ModelShape.Of(model);
        // Read by the runtime as DEEPSEEK_<FLAG> defaults of its serve flags (mounted with envFrom).
        var data = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [Variable(RuntimeContract.Flags.Dtype)] = spec.Model.Dtype,
            [Variable(RuntimeContract.Flags.Quantization)] = spec.Model.Quantization,
            [Variable(RuntimeContract.Flags.Device)] = RuntimeDevice.Of(spec.Runtime),
            [Variable(RuntimeContract.Flags.MaxRunningRequests)] = Invariant(spec.Engine.MaxRunningRequests),
            [Variable(RuntimeContract.Flags.MaxQueuedRequests)] = Invariant(spec.Engine.MaxQueuedRequests),
            [Variable(RuntimeContract.Flags.MaxBatchTokens)] = Invariant(spec.Engine.MaxBatchTokens),
            [Variable(RuntimeContract.Flags.KvCacheMemoryFraction)] = spec.Engine.KvCacheMemoryFraction.ToString("R", CultureInfo.InvariantCulture),
            [Variable(RuntimeContract.Flags.DrainTimeout)] = Invariant(spec.Engine.DrainTimeoutSeconds),
            [Variable(RuntimeContract.Flags.PrefixCaching)] = spec.Engine.PrefixCaching ? "true" : "false",
            [Variable(RuntimeContract.Flags.RedundantExperts)] = Invariant(spec.Parallelism.RedundantExperts),
        };
        if (spec.Model.MaxContextLength is { } context) data[Variable(RuntimeContract.Flags.MaxContextLength)] = Invariant(context);
        if (spec.Parallelism.RebalanceIntervalSeconds > 0) data[Variable(RuntimeContract.Flags.RebalanceIntervalSeconds)] = Invariant(spec.Parallelism.RebalanceIntervalSeconds);
        if (spec.Parallelism.DataParallelAttention) data[Variable(RuntimeContract.Flags.DataParallelAttention)] = "true";
        // Data-parallel attention also runs over NCCL in lockstep, but that has not run on several GPUs yet: gRPC
        // until it has. The leader shape keeps the runtime's default (NCCL on CUDA), rebalancing or not.
        if (shape.IsExpertParallel && spec.Parallelism.DataParallelAttention)
            data[Variable(RuntimeContract.Flags.ExpertTransport)] = "grpc";
        return new V1ConfigMap
        {
            ApiVersion = "v1",
            Kind = "ConfigMap",
            Metadata = Metadata(model, ObjectNames.RuntimeSettings(model.Metadata.Name)),
            Data = new Dictionary<string, string>(data),
        };
    }

    private static V1Service Service(V1Alpha1DeepSeekModel model, string name, IDictionary<string, string> selector, bool headless) => new()
    {
        ApiVersion = "v1",
        Kind = "Service",
        Metadata = Metadata(model, name),
        Spec = new V1ServiceSpec
        {
            Selector = new Dictionary<string, string>(selector),
            ClusterIP = headless ? "None" : null,
            // Peers find each other before they are ready (rank 0 waits for the others to join).
            PublishNotReadyAddresses = headless ? true : null,
            Ports =
            [
                new V1ServicePort { Name = RuntimeContract.HttpName, Port = RuntimeContract.Http, TargetPort = RuntimeContract.HttpName, Protocol = "TCP" },
                new V1ServicePort { Name = RuntimeContract.GrpcName, Port = RuntimeContract.Grpc, TargetPort = RuntimeContract.GrpcName, Protocol = "TCP" },
            ],
        },
    };

    private static Dictionary<string, string> GroupSelector(string model, int group)
    {
        var selector = ModelLabels.Selector(model);
        selector[ModelLabels.Group] = ObjectNames.GroupLabel(group);
        return selector;
    }

    private static Dictionary<string, string> PodLabels(string model, int? group)
    {
        var labels = ModelLabels.For(model);
        if (group is { } k) labels[ModelLabels.Group] = ObjectNames.GroupLabel(k);
        return labels;
    }

    private static V1ObjectMeta Metadata(V1Alpha1DeepSeekModel model, string name, int? group = null)
    {
        var labels = ModelLabels.For(model.Metadata.Name);
        if (group is { } k) labels[ModelLabels.Group] = ObjectNames.GroupLabel(k);
        var metadata = new V1ObjectMeta { Name = name, NamespaceProperty = model.Metadata.NamespaceProperty, Labels = labels };
        if (!string.IsNullOrEmpty(model.Metadata.Uid))
        {
            metadata.OwnerReferences =
            [
                new V1OwnerReference
                {
                    ApiVersion = V1Alpha1DeepSeekModel.GroupVersion,
                    Kind = V1Alpha1DeepSeekModel.KindName,
                    Name = model.Metadata.Name,
                    Uid = model.Metadata.Uid,
                    Controller = true,
                    BlockOwnerDeletion = true,
                },
            ];
        }
        return metadata;
    }

    /// <summary>Records the object's own hash on it, the basis of "update only on real change".</summary>
    private static void Stamp(IKubernetesObject<V1ObjectMeta> item)
    {
        var hash = SpecHash.Of(item);
        item.Metadata.Annotations = new Dictionary<string, string> { [ModelLabels.SpecHash] = hash };
    }

    private static string Variable(string flag) => RuntimeContract.VariableFor(flag);

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
