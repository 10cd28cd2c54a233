using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>
/// model.source.pvc.download: an init container of the runtime image runs the runtime's download verb
/// into pvc.path of the claim, the only container that may write the claim.
/// </summary>
public sealed class ModelDownloadTests
{
    private static readonly OperatorDefaults Defaults = new() { RuntimeImage = "runtime:default" };

    private static V1PodSpec Pod(V1Alpha1DeepSeekModel model) =>
        DesiredStateBuilder.Build(model, Defaults).OfType<V1Deployment>().Single().Spec.Template.Spec;

    private static V1Alpha1DeepSeekModel WithDownload(ModelDownload download, string path = "deepseek-v2-lite")
    {
        var model = Models.SinglePod();
        model.Spec.Model.Source!.Pvc!.Path = path;
        model.Spec.Model.Source.Pvc.Download = download;
        return model;
    }

    [Fact]
    public void Download_runs_the_download_verb_of_the_runtime_image_into_the_claims_path_before_the_runtime()
    {
        var pod = Pod(WithDownload(new ModelDownload { Repo = "deepseek-ai/DeepSeek-V2-Lite", Revision = "604d5664dddd88a0433dbae533b7fe9472482de0" }));

        var init = Assert.Single(pod.InitContainers);
        Assert.Equal("download", init.Name);
        Assert.Equal(pod.Containers[0].Image, init.Image);
        Assert.Equal(["download", "deepseek-ai/DeepSeek-V2-Lite", "--revision", "604d5664dddd88a0433dbae533b7fe9472482de0", "--output", "/claim/deepseek-v2-lite", "--skip-if-complete"], init.Args);
        Assert.Null(init.Command);
        Assert.Null(init.Env);
        // The whole claim, writable, so the downloader (not the kubelet, as root) creates the folder on an empty claim.
        var mount = init.VolumeMounts.Single(m => m.Name == "model");
        Assert.Equal("/claim", mount.MountPath);
        Assert.Null(mount.SubPath);
        Assert.False(mount.ReadOnlyProperty);
        Assert.Contains(init.VolumeMounts, m => m is { Name: "tmp", MountPath: "/tmp" });
        // Its error ends up in the pod status, where the model's Degraded condition quotes it.
        Assert.Equal("FallbackToLogsOnError", init.TerminationMessagePolicy);
    }

    [Fact]
    public void The_claim_is_writable_for_the_download_only_and_the_runtime_keeps_reading_its_path_read_only()
    {
        var pod = Pod(WithDownload(new ModelDownload { Repo = "deepseek-ai/DeepSeek-V2-Lite" }));

        Assert.False(pod.Volumes.Single(v => v.Name == "model").PersistentVolumeClaim.ReadOnlyProperty);
        var runtime = pod.Containers.Single().VolumeMounts.Single(m => m.Name == "model");
        Assert.True(runtime.ReadOnlyProperty);
        Assert.Equal("deepseek-v2-lite", runtime.SubPath);
        Assert.Equal("/models", runtime.MountPath);

        // Without a download nothing in the pod may write the claim.
        var plain = Pod(Models.SinglePod());
        Assert.Null(plain.InitContainers);
        Assert.True(plain.Volumes.Single(v => v.Name == "model").PersistentVolumeClaim.ReadOnlyProperty);
    }

    [Fact]
    public void The_download_container_is_hardened_like_the_runtime_container()
    {
        var pod = Pod(WithDownload(new ModelDownload { Repo = "deepseek-ai/DeepSeek-V2-Lite" }));
        var init = pod.InitContainers.Single().SecurityContext;
        var runtime = pod.Containers.Single().SecurityContext;

        Assert.False(init.AllowPrivilegeEscalation);
        Assert.True(init.ReadOnlyRootFilesystem);
        Assert.True(init.RunAsNonRoot);
        Assert.Equal(["ALL"], init.Capabilities.Drop);
        Assert.Equal(k8s.KubernetesJson.Serialize(runtime), k8s.KubernetesJson.Serialize(init));
        // User 65532 and the seccomp profile come from the pod, for every container alike.
        Assert.Equal(65532, pod.SecurityContext.RunAsUser);
        Assert.Equal(65532, pod.SecurityContext.FsGroup);
    }

    [Fact]
    public void The_download_gets_the_runtimes_cpu_and_memory_but_no_gpu()
    {
        var model = WithDownload(new ModelDownload { Repo = "deepseek-ai/DeepSeek-V2-Lite" });
        model.Spec.Runtime.GpusPerPod = 2;
        model.Spec.Runtime.Resources = new V1ResourceRequirements
        {
            Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("8"), ["memory"] = new("64Gi") },
            Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("8"), ["memory"] = new("64Gi") },
        };
        var pod = Pod(model);
        var init = pod.InitContainers.Single().Resources;

        Assert.Equal("2", pod.Containers.Single().Resources.Limits["nvidia.com/gpu"].ToString());
        Assert.Equal(["cpu", "memory"], init.Limits.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["cpu", "memory"], init.Requests.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("64Gi", init.Limits["memory"].ToString());
        Assert.Equal("8", init.Requests["cpu"].ToString());
    }

    [Fact]
    public void A_private_hub_gets_its_endpoint_flag_and_its_token_from_the_secret_as_HF_TOKEN()
    {
        var pod = Pod(WithDownload(new ModelDownload
        {
            Repo = "team/private-model",
            Revision = "v2",
            Endpoint = "https://hub.example.com",
            TokenSecretRef = new SecretKeyReference { Name = "hub-credentials" },
        }, path: ""));

        var init = pod.InitContainers.Single();
        Assert.Equal(["download", "team/private-model", "--revision", "v2", "--output", "/claim", "--skip-if-complete", "--endpoint", "https://hub.example.com"], init.Args);
        var token = Assert.Single(init.Env);
        Assert.Equal("HF_TOKEN", token.Name);
        Assert.Null(token.Value);
        Assert.Equal("hub-credentials", token.ValueFrom.SecretKeyRef.Name);
        Assert.Equal("token", token.ValueFrom.SecretKeyRef.Key);
        // The token reaches the downloader only.
        Assert.DoesNotContain(pod.Containers.Single().Env, e => e.Name == "HF_TOKEN");
    }

    [Fact]
    public void A_token_secret_key_of_its_own_is_used()
    {
        var pod = Pod(WithDownload(new ModelDownload { Repo = "team/m", TokenSecretRef = new SecretKeyReference { Name = "s", Key = "hf" } }));
        Assert.Equal("hf", pod.InitContainers.Single().Env.Single().ValueFrom.SecretKeyRef.Key);
    }

    [Fact]
    public void Every_pod_of_a_multi_pod_model_downloads_before_its_rank_starts()
    {
        var model = Models.MultiPod();
        model.Spec.Model.Source!.Pvc!.Download = new ModelDownload { Repo = "deepseek-ai/DeepSeek-V3" };
        var sets = DesiredStateBuilder.Build(model, Defaults).OfType<V1StatefulSet>().ToList();
        Assert.Equal(2, sets.Count);
        Assert.All(sets, s => Assert.Equal(["download", "deepseek-ai/DeepSeek-V3", "--revision", "main", "--output", "/claim/deepseek-v2-lite", "--skip-if-complete"], s.Spec.Template.Spec.InitContainers.Single().Args));
    }
}
