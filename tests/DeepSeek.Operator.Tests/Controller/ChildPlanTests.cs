using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Controller;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Tests.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Controller;

public sealed class ChildPlanTests
{
    private static IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Desired() => DesiredStateBuilder.Build(Models.SinglePod(), new OperatorDefaults()).Objects;

    /// <summary>What the API server returns: the object as sent plus defaults, server fields and status.</summary>
    private static List<IKubernetesObject<V1ObjectMeta>> Stored()
    {
        var stored = Desired().Select(Copy).ToList();
        foreach (var o in stored)
        {
            o.Metadata.ResourceVersion = "7";
            o.Metadata.Uid = Guid.NewGuid().ToString();
            o.Metadata.Annotations["deployment.kubernetes.io/revision"] = "3";
        }
        var deployment = stored.OfType<V1Deployment>().Single();
        deployment.Spec.ProgressDeadlineSeconds = 600;
        deployment.Spec.Template.Spec.Containers[0].ImagePullPolicy = "IfNotPresent";
        deployment.Status = new V1DeploymentStatus { Replicas = 2 };
        return stored;
    }

    private static IKubernetesObject<V1ObjectMeta> Copy(IKubernetesObject<V1ObjectMeta> o)
    {
        var json = KubernetesJson.Serialize(o);
        return o switch
        {
            V1ConfigMap => KubernetesJson.Deserialize<V1ConfigMap>(json),
            V1Service => KubernetesJson.Deserialize<V1Service>(json),
            V1Deployment => KubernetesJson.Deserialize<V1Deployment>(json),
            V1PodDisruptionBudget => KubernetesJson.Deserialize<V1PodDisruptionBudget>(json),
            _ => throw new NotSupportedException(o.Kind),
        };
    }

    [Fact]
    public void Waves_send_what_pods_read_first_then_the_workloads_then_the_deletions()
    {
        var desired = Desired();
        var stale = new V1StatefulSet { ApiVersion = "apps/v1", Kind = "StatefulSet", Metadata = new V1ObjectMeta { Name = "old", NamespaceProperty = "default" } };
        var plan = ChildPlan.Compute(desired, [stale]);

        var waves = ChildPlan.Waves(plan);

        Assert.Equal(3, waves.Count);
        Assert.Equal(plan.Count, waves.Sum(w => w.Count));
        Assert.All(waves[0], a => Assert.True(a.Kind == ChildActionKind.Create && a.Object is not (V1Deployment or V1StatefulSet)));
        Assert.Contains(waves[0], a => a.Object is V1ConfigMap);
        Assert.Contains(waves[0], a => a.Object is V1Service);
        var workload = Assert.Single(waves[1]);
        Assert.Equal(ChildActionKind.Create, workload.Kind);
        Assert.IsType<V1Deployment>(workload.Object);
        Assert.Equal((ChildActionKind.Delete, "old"), (Assert.Single(waves[2]).Kind, waves[2][0].Object.Metadata.Name));
    }

    [Fact]
    public void Waves_of_nothing_to_do_are_none() => Assert.Empty(ChildPlan.Waves([]));

    [Fact]
    public void Defaults_and_fields_of_others_are_no_reason_to_write() => Assert.Empty(ChildPlan.Compute(Desired(), Stored()));

    [Fact]
    public void A_changed_owned_field_is_restored_as_drift_keeping_others_annotations()
    {
        var stored = Stored();
        stored.OfType<V1Deployment>().Single().Spec.Replicas = 5;
        var update = Assert.Single(ChildPlan.Compute(Desired(), stored));
        Assert.Equal(ChildActionKind.Update, update.Kind);
        Assert.True(update.Drift);
        var deployment = (V1Deployment)update.Object;
        Assert.Equal(2, deployment.Spec.Replicas);
        Assert.Equal("7", deployment.Metadata.ResourceVersion);
        Assert.Equal("3", deployment.Metadata.Annotations["deployment.kubernetes.io/revision"]);
    }

    [Fact]
    public void The_group_token_is_never_planned_so_never_replaced_or_deleted()
    {
        // The reconciler creates it once, apart from the plan (RBAC get and create on Secrets, no update or delete).
        var state = DesiredStateBuilder.Build(Models.MultiPod(), new OperatorDefaults());
        Assert.NotNull(state.GroupToken);
        Assert.DoesNotContain(ChildPlan.Compute(state.Objects, []), a => a.Object is V1Secret);
        Assert.DoesNotContain(ChildPlan.Compute(DesiredStateBuilder.Build(Models.SinglePod(), new OperatorDefaults()).Objects, state.Objects), a => a.Object is V1Secret);
    }

    [Fact]
    public void A_change_of_the_model_is_an_update_but_not_drift()
    {
        var stored = Stored();
        var model = Models.SinglePod(replicas: 3);
        var update = Assert.Single(ChildPlan.Compute(DesiredStateBuilder.Build(model, new OperatorDefaults()).Objects, stored), a => a.Object is V1Deployment);
        Assert.False(update.Drift);
    }

    [Fact]
    public void An_edited_settings_value_is_drift()
    {
        var stored = Stored();
        stored.OfType<V1ConfigMap>().Single().Data["DEEPSEEK_MAX_BATCH_TOKENS"] = "1";
        Assert.True(Assert.Single(ChildPlan.Compute(Desired(), stored)).Drift);
    }

    /// <summary>A model whose pods download the checkpoint: its claim and the download's mount are sent with <c>readOnly: false</c>.</summary>
    private static IReadOnlyList<IKubernetesObject<V1ObjectMeta>> DesiredWithDownload()
    {
        var model = Models.SinglePod();
        model.Spec.Model.Source!.Pvc!.Download = new ModelDownload { Repo = "deepseek-ai/DeepSeek-V2-Lite" };
        model.Spec.Runtime.Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["memory"] = new("64Gi"), ["cpu"] = new("8") } };
        return DesiredStateBuilder.Build(model, new OperatorDefaults()).Objects;
    }

    [Fact]
    public void Zero_values_the_server_leaves_out_and_quantities_written_otherwise_are_no_difference()
    {
        var stored = DesiredWithDownload().Select(Copy).ToList();
        var pod = stored.OfType<V1Deployment>().Single().Spec.Template.Spec;
        Assert.False(pod.Volumes.Single(v => v.Name == "model").PersistentVolumeClaim.ReadOnlyProperty);
        // What a real API server returns: false of a non-pointer field left out, quantities as it writes them.
        pod.Volumes.Single(v => v.Name == "model").PersistentVolumeClaim.ReadOnlyProperty = null;
        foreach (var mount in pod.InitContainers.SelectMany(c => c.VolumeMounts).Where(m => m.ReadOnlyProperty == false)) mount.ReadOnlyProperty = null;
        pod.Containers[0].Resources.Requests["memory"] = new ResourceQuantity("65536Mi");
        pod.Containers[0].Resources.Requests["cpu"] = new ResourceQuantity("8000m");
        Assert.Empty(ChildPlan.Compute(DesiredWithDownload(), stored));
    }

    [Fact]
    public void A_removed_false_of_a_pointer_field_and_a_changed_quantity_are_drift()
    {
        var stored = Stored();
        // Kept by a real server when false, so its absence is someone's edit: the pod would get an API token.
        stored.OfType<V1Deployment>().Single().Spec.Template.Spec.AutomountServiceAccountToken = null;
        Assert.True(Assert.Single(ChildPlan.Compute(Desired(), stored)).Drift);

        stored = Stored();
        var requests = stored.OfType<V1Deployment>().Single().Spec.Template.Spec.Containers[0].Resources.Requests;
        requests["memory"] = new ResourceQuantity("1Gi");
        Assert.True(Assert.Single(ChildPlan.Compute(Desired(), stored)).Drift);
    }
}
