using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>The objects a model owns: kinds, names, owner references, labels, Services, PDB, ConfigMap, groups.</summary>
public sealed class DesiredStateBuilderTests
{
    private static readonly OperatorDefaults Defaults = new() { RuntimeImage = "runtime:default" };

    private static DesiredState Build(V1Alpha1DeepSeekModel model) => DesiredStateBuilder.Build(model, Defaults);

    private static string Json(object value) => KubernetesJson.Serialize(value);

    private static string[] KindsAndNames(DesiredState state) => [.. state.Objects.Select(o => $"{o.Kind}/{o.Metadata.Name}")];

    [Fact]
    public void A_single_pod_model_becomes_a_deployment_with_its_replicas_a_service_a_pdb_and_its_settings()
    {
        var state = Build(Models.SinglePod(replicas: 3));

        Assert.Equal(["ConfigMap/lite-runtime", "Deployment/lite", "Service/lite", "PodDisruptionBudget/lite"], KindsAndNames(state));
        var deployment = Assert.Single(state.OfType<V1Deployment>());
        Assert.Equal(3, deployment.Spec.Replicas);
        Assert.Equal("apps/v1", deployment.ApiVersion);
        Assert.Equal(ModelLabels.Selector("lite"), deployment.Spec.Selector.MatchLabels);
        // The selector must select the template's pods, or the API server rejects the Deployment.
        Assert.All(deployment.Spec.Selector.MatchLabels, l => Assert.Equal(l.Value, deployment.Spec.Template.Metadata.Labels[l.Key]));
        Assert.Empty(state.OfType<V1StatefulSet>());
    }

    [Fact]
    public void Every_object_is_owned_by_the_model_as_its_controller_and_lives_in_its_namespace()
    {
        foreach (var model in new[] { Models.SinglePod(), Models.MultiPod() })
        {
            foreach (var item in Build(model).Objects)
            {
                var owner = Assert.Single(item.Metadata.OwnerReferences);
                Assert.Equal("serving.deepseek-operator.io/v1alpha1", owner.ApiVersion);
                Assert.Equal("DeepSeekModel", owner.Kind);
                Assert.Equal(model.Metadata.Name, owner.Name);
                Assert.Equal(Models.Uid, owner.Uid);
                Assert.True(owner.Controller);
                Assert.True(owner.BlockOwnerDeletion);
                Assert.Equal("serving", item.Metadata.NamespaceProperty);
            }
        }
    }

    [Fact]
    public void A_model_without_a_uid_gets_no_owner_reference_rather_than_a_wrong_one()
    {
        var model = Models.SinglePod();
        model.Metadata.Uid = null;
        Assert.All(Build(model).Objects, o => Assert.Null(o.Metadata.OwnerReferences));
    }

    [Fact]
    public void Every_object_and_pod_template_carries_the_app_kubernetes_io_labels()
    {
        foreach (var model in new[] { Models.SinglePod(), Models.MultiPod() })
        {
            var state = Build(model);
            var templates = state.OfType<V1Deployment>().Select(d => d.Spec.Template.Metadata)
                .Concat(state.OfType<V1StatefulSet>().Select(s => s.Spec.Template.Metadata));
            foreach (var metadata in state.Objects.Select(o => o.Metadata).Concat(templates))
            {
                Assert.Equal("deepseek-runtime", metadata.Labels["app.kubernetes.io/name"]);
                Assert.Equal(model.Metadata.Name, metadata.Labels["app.kubernetes.io/instance"]);
                Assert.Equal("deepseek-operator", metadata.Labels["app.kubernetes.io/managed-by"]);
            }
        }
    }

    [Fact]
    public void Every_object_records_its_own_hash_and_equal_models_build_equal_objects()
    {
        var first = Build(Models.SinglePod());
        var second = Build(Models.SinglePod());
        Assert.All(first.Objects, o => Assert.Matches("^[0-9a-f]{16}$", o.Metadata.Annotations[ModelLabels.SpecHash]));
        Assert.Equal(first.Objects.Select(Json), second.Objects.Select(Json));
    }

    [Fact]
    public void A_settings_change_changes_the_pod_templates_config_hash_so_the_pods_roll()
    {
        var before = Build(Models.SinglePod()).OfType<V1Deployment>().Single();
        var changed = Models.SinglePod();
        changed.Spec.Engine.MaxBatchTokens = 4096;
        var after = Build(changed).OfType<V1Deployment>().Single();
        Assert.NotEqual(before.Spec.Template.Metadata.Annotations[ModelLabels.ConfigHash], after.Spec.Template.Metadata.Annotations[ModelLabels.ConfigHash]);
        Assert.NotEqual(before.Metadata.Annotations[ModelLabels.SpecHash], after.Metadata.Annotations[ModelLabels.SpecHash]);
    }

    [Fact]
    public void The_client_service_of_a_single_pod_model_selects_all_its_pods_on_http_and_grpc()
    {
        var service = Build(Models.SinglePod()).OfType<V1Service>().Single();
        Assert.Equal(ModelLabels.Selector("lite"), service.Spec.Selector);
        Assert.Null(service.Spec.ClusterIP);
        Assert.Equal([("http", 8000, "http"), ("grpc", 50051, "grpc")], service.Spec.Ports.Select(p => (p.Name, p.Port, p.TargetPort.Value)));
    }

    [Fact]
    public void The_disruption_budget_lets_one_model_pod_go_at_a_time()
    {
        var pdb = Build(Models.MultiPod()).OfType<V1PodDisruptionBudget>().Single();
        Assert.Equal("policy/v1", pdb.ApiVersion);
        Assert.Equal("1", pdb.Spec.MaxUnavailable.Value);
        Assert.Null(pdb.Spec.MinAvailable);
        Assert.Equal(ModelLabels.Selector("v3"), pdb.Spec.Selector.MatchLabels);
    }

    [Fact]
    public void The_configmap_holds_the_engine_settings_as_DEEPSEEK_variables()
    {
        var model = Models.MultiPod();
        model.Spec.Model.Dtype = "float16";
        model.Spec.Model.MaxContextLength = 32768;
        model.Spec.Engine = new EngineSpec { MaxRunningRequests = 32, MaxQueuedRequests = 100, MaxBatchTokens = 4096, KvCacheMemoryFraction = 0.85, PrefixCaching = false, DrainTimeoutSeconds = 45 };
        model.Spec.Parallelism.RedundantExperts = 32;

        var settings = Build(model).OfType<V1ConfigMap>().Single();

        Assert.Equal("v3-runtime", settings.Metadata.Name);
        Assert.Equal(new Dictionary<string, string>
        {
            ["DEEPSEEK_DTYPE"] = "float16",
            ["DEEPSEEK_QUANTIZATION"] = "none",
            ["DEEPSEEK_DEVICE"] = "cuda",
            ["DEEPSEEK_MAX_RUNNING_REQUESTS"] = "32",
            ["DEEPSEEK_MAX_QUEUED_REQUESTS"] = "100",
            ["DEEPSEEK_MAX_BATCH_TOKENS"] = "4096",
            ["DEEPSEEK_KV_CACHE_MEMORY_FRACTION"] = "0.85",
            ["DEEPSEEK_DRAIN_TIMEOUT"] = "45",
            ["DEEPSEEK_PREFIX_CACHING"] = "false",
            ["DEEPSEEK_REDUNDANT_EXPERTS"] = "32",
            ["DEEPSEEK_MAX_CONTEXT_LENGTH"] = "32768",
        }, settings.Data);
    }

    [Fact]
    public void The_api_key_comes_from_the_secret_by_reference_and_never_into_the_configmap()
    {
        var model = Models.SinglePod();
        model.Spec.Engine.ApiKeySecretRef = new SecretKeyReference { Name = "lite-keys", Key = "token" };
        var state = Build(model);

        var env = state.OfType<V1Deployment>().Single().Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "DEEPSEEK_API_KEY");
        Assert.Null(env.Value);
        Assert.Equal("lite-keys", env.ValueFrom.SecretKeyRef.Name);
        Assert.Equal("token", env.ValueFrom.SecretKeyRef.Key);
        var settings = state.OfType<V1ConfigMap>().Single();
        Assert.DoesNotContain(settings.Data, d => d.Key.Contains("API_KEY", StringComparison.Ordinal) || d.Value.Contains("lite-keys", StringComparison.Ordinal));
        Assert.Empty(state.OfType<V1Secret>());
        Assert.Null(state.GroupToken);
    }

    [Fact]
    public void A_multi_pod_model_becomes_one_statefulset_and_headless_service_per_group()
    {
        var state = Build(Models.MultiPod(replicas: 2));

        Assert.Equal(
            ["ConfigMap/v3-runtime", "NetworkPolicy/v3-experts", "Service/v3-g0", "StatefulSet/v3-g0", "Service/v3-g1", "StatefulSet/v3-g1", "Service/v3", "PodDisruptionBudget/v3"],
            KindsAndNames(state));
        // The token Secret is apart: created once if missing, never compared, replaced or deleted.
        Assert.Equal("v3-ep-group-token", state.GroupToken?.Metadata.Name);
        Assert.Empty(state.OfType<V1Deployment>());
        foreach (var (set, k) in state.OfType<V1StatefulSet>().Select((s, k) => (s, k)))
        {
            Assert.Equal($"v3-g{k}", set.Metadata.Name);
            Assert.Equal(2, set.Spec.Replicas);
            Assert.Equal($"v3-g{k}", set.Spec.ServiceName);
            Assert.Equal("Parallel", set.Spec.PodManagementPolicy);
            Assert.Equal($"g{k}", set.Spec.Selector.MatchLabels[ModelLabels.Group]);
            Assert.All(set.Spec.Selector.MatchLabels, l => Assert.Equal(l.Value, set.Spec.Template.Metadata.Labels[l.Key]));

            var headless = state.OfType<V1Service>().Single(s => s.Metadata.Name == set.Spec.ServiceName);
            Assert.Equal("None", headless.Spec.ClusterIP);
            Assert.True(headless.Spec.PublishNotReadyAddresses);
            Assert.Equal(set.Spec.Selector.MatchLabels, headless.Spec.Selector);
        }
    }

    [Fact]
    public void With_data_parallel_attention_the_client_service_selects_every_rank_and_the_ranks_talk_grpc()
    {
        var model = Models.MultiPod();
        model.Spec.Runtime.GpusPerPod = 1;
        model.Spec.Parallelism = new ParallelismSpec { PodsPerReplica = 4, DataParallelAttention = true };
        var state = Build(model);

        var service = state.OfType<V1Service>().Single(s => s.Metadata.Name == "v3");
        Assert.Equal(new Dictionary<string, string> { ["app.kubernetes.io/name"] = "deepseek-runtime", ["app.kubernetes.io/instance"] = "v3" }, service.Spec.Selector);
        var settings = state.OfType<V1ConfigMap>().Single().Data;
        Assert.Equal("true", settings["DEEPSEEK_DATA_PARALLEL_ATTENTION"]);
        Assert.Equal("grpc", settings["DEEPSEEK_EXPERT_TRANSPORT"]);
    }

    [Fact]
    public void The_leader_shape_keeps_the_runtime_default_transport_whether_or_not_it_rebalances()
    {
        var rebalanced = Models.MultiPod();
        rebalanced.Spec.Parallelism.RebalanceIntervalSeconds = 300;
        var settings = Build(rebalanced).OfType<V1ConfigMap>().Single().Data;
        Assert.Equal("300", settings["DEEPSEEK_REBALANCE_INTERVAL"]);
        Assert.False(settings.ContainsKey("DEEPSEEK_EXPERT_TRANSPORT"));

        var plain = Build(Models.MultiPod()).OfType<V1ConfigMap>().Single().Data;
        Assert.False(plain.ContainsKey("DEEPSEEK_EXPERT_TRANSPORT"));
        Assert.False(plain.ContainsKey("DEEPSEEK_DATA_PARALLEL_ATTENTION"));
    }

    [Fact]
    public void The_client_service_of_a_multi_pod_model_selects_the_group_leaders_only()
    {
        var service = Build(Models.MultiPod()).OfType<V1Service>().Single(s => s.Metadata.Name == "v3");
        Assert.Null(service.Spec.ClusterIP);
        Assert.Equal(new Dictionary<string, string>
        {
            ["app.kubernetes.io/name"] = "deepseek-runtime",
            ["app.kubernetes.io/instance"] = "v3",
            ["apps.kubernetes.io/pod-index"] = "0",
        }, service.Spec.Selector);
    }

    [Fact]
    public void Each_rank_learns_its_rank_from_its_ordinal_the_world_size_and_exactly_its_groups_peers()
    {
        var model = Models.MultiPod(replicas: 2);
        model.Spec.Parallelism.PodsPerReplica = 4;
        model.Spec.Parallelism.ExpertParallelSize = 32;
        var sets = Build(model).OfType<V1StatefulSet>().ToList();

        foreach (var (set, k) in sets.Select((s, k) => (s, k)))
        {
            var env = set.Spec.Template.Spec.Containers[0].Env.ToDictionary(e => e.Name);
            Assert.Equal("metadata.labels['apps.kubernetes.io/pod-index']", env["DEEPSEEK_RANK"].ValueFrom.FieldRef.FieldPath);
            Assert.Null(env["DEEPSEEK_RANK"].Value);
            // 32 ranks over 4 pods: each pod's serve runs 8 local ranks (one per GPU).
            Assert.Equal("32", env["DEEPSEEK_WORLD_SIZE"].Value);
            Assert.Equal("8", env["DEEPSEEK_LOCAL_RANKS"].Value);
            // The StatefulSet's pods are <set>-<ordinal>, and the headless Service <set> gives each a DNS name; ranks listen on the expert port.
            Assert.Equal(
                [$"v3-g{k}-0.v3-g{k}.serving.svc:50052", $"v3-g{k}-1.v3-g{k}.serving.svc:50052", $"v3-g{k}-2.v3-g{k}.serving.svc:50052", $"v3-g{k}-3.v3-g{k}.serving.svc:50052"],
                env["DEEPSEEK_PEERS"].Value.Split(','));
        }
    }

    [Fact]
    public void A_single_pod_replica_is_rank_zero_of_a_world_of_one_and_has_no_peers()
    {
        var env = Build(Models.SinglePod()).OfType<V1Deployment>().Single().Spec.Template.Spec.Containers[0].Env.ToDictionary(e => e.Name);
        Assert.Equal("0", env["DEEPSEEK_RANK"].Value);
        Assert.Equal("1", env["DEEPSEEK_WORLD_SIZE"].Value);
        Assert.False(env.ContainsKey("DEEPSEEK_PEERS"));
        Assert.False(env.ContainsKey("DEEPSEEK_LOCAL_RANKS"));
        Assert.False(env.ContainsKey("DEEPSEEK_GROUP_TOKEN"));
    }

    [Fact]
    public void A_single_pod_replica_on_several_gpus_runs_one_local_rank_per_gpu_with_the_group_token()
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.GpusPerPod = 4;
        var objects = Build(model);
        var env = objects.OfType<V1Deployment>().Single().Spec.Template.Spec.Containers[0].Env.ToDictionary(e => e.Name);
        Assert.Equal("0", env["DEEPSEEK_RANK"].Value);
        Assert.Equal("4", env["DEEPSEEK_WORLD_SIZE"].Value);
        Assert.Equal("4", env["DEEPSEEK_LOCAL_RANKS"].Value);
        // One address per pod; the pod's serve derives its local ranks' ports from it.
        Assert.Equal("127.0.0.1:50052", env["DEEPSEEK_PEERS"].Value);
        Assert.Equal(ObjectNames.GroupToken(model.Metadata.Name), env["DEEPSEEK_GROUP_TOKEN"].ValueFrom.SecretKeyRef.Name);
        Assert.NotNull(objects.GroupToken);
        Assert.Empty(objects.OfType<V1Secret>());
        Assert.Single(objects.OfType<V1NetworkPolicy>());
    }

    [Fact]
    public void Scaling_a_single_pod_model_changes_only_the_replica_count()
    {
        var two = Build(Models.SinglePod(replicas: 2));
        var five = Build(Models.SinglePod(replicas: 5));

        Assert.Equal(KindsAndNames(two), KindsAndNames(five));
        var before = two.OfType<V1Deployment>().Single();
        var after = five.OfType<V1Deployment>().Single();
        Assert.Equal(5, after.Spec.Replicas);
        after.Spec.Replicas = before.Spec.Replicas;
        after.Metadata.Annotations = before.Metadata.Annotations;
        Assert.Equal(KubernetesJson.Serialize(before), KubernetesJson.Serialize(after));
        // Everything else is byte-for-byte the same, so it is not updated.
        Assert.Equal(
            two.Objects.Where(o => o is not V1Deployment).Select(Json),
            five.Objects.Where(o => o is not V1Deployment).Select(Json));
    }

    [Fact]
    public void Scaling_a_multi_pod_model_adds_and_removes_whole_groups_and_keeps_the_names_of_the_others()
    {
        var two = Build(Models.MultiPod(replicas: 2));
        var three = Build(Models.MultiPod(replicas: 3));
        var one = Build(Models.MultiPod(replicas: 1));

        Assert.Equal(["v3-g0", "v3-g1", "v3-g2"], three.OfType<V1StatefulSet>().Select(s => s.Metadata.Name));
        Assert.Equal(["v3-g0"], one.OfType<V1StatefulSet>().Select(s => s.Metadata.Name));
        Assert.All(three.OfType<V1StatefulSet>(), s => Assert.Equal(2, s.Spec.Replicas));
        // The groups both sizes have are identical objects: a scale never touches a running group.
        var shared = KindsAndNames(two).Intersect(KindsAndNames(three)).ToHashSet();
        Assert.Equal(8, shared.Count);
        Assert.Equal(
            two.Objects.Where(o => shared.Contains($"{o.Kind}/{o.Metadata.Name}")).Select(Json),
            three.Objects.Where(o => shared.Contains($"{o.Kind}/{o.Metadata.Name}")).Select(Json));
    }

    [Fact]
    public void Scaled_to_zero_a_multi_pod_model_keeps_its_service_settings_and_group_token_but_no_groups()
    {
        var state = Build(Models.MultiPod(replicas: 0));
        Assert.Equal(["ConfigMap/v3-runtime", "NetworkPolicy/v3-experts", "Service/v3", "PodDisruptionBudget/v3"], KindsAndNames(state));
        Assert.NotNull(state.GroupToken);
    }

    [Fact]
    public void While_autoscaling_the_autoscalers_decision_within_its_bounds_sets_the_replicas()
    {
        var model = Models.SinglePod(replicas: 1);
        model.Spec.Autoscaling = new AutoscalingSpec { Enabled = true, MinReplicas = 2, MaxReplicas = 4 };
        Assert.Equal(2, Build(model).OfType<V1Deployment>().Single().Spec.Replicas);
        model.Status = new DeepSeekModelStatus { DesiredReplicas = 3 };
        Assert.Equal(3, Build(model).OfType<V1Deployment>().Single().Spec.Replicas);
        model.Status = new DeepSeekModelStatus { DesiredReplicas = 9 };
        Assert.Equal(4, Build(model).OfType<V1Deployment>().Single().Spec.Replicas);
    }

    [Fact]
    public void The_endpoint_is_the_client_services_cluster_dns_name_on_the_http_port() =>
        Assert.Equal("http://lite.serving.svc:8000", DesiredStateBuilder.Endpoint(Models.SinglePod()));

    [Fact]
    public void The_rebalance_interval_reaches_serve_through_the_settings_only_when_set()
    {
        var model = Models.MultiPod(replicas: 1);
        Assert.False(Build(model).OfType<V1ConfigMap>().Single().Data.ContainsKey("DEEPSEEK_REBALANCE_INTERVAL"));
        model.Spec.Parallelism.RebalanceIntervalSeconds = 300;
        Assert.Equal("300", Build(model).OfType<V1ConfigMap>().Single().Data["DEEPSEEK_REBALANCE_INTERVAL"]);
    }
}
