using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>Runtime pods carry no API token, are never BestEffort, and bound their shared memory (issue 18, defect 8).</summary>
public sealed class PodHardeningTests
{
    private static V1PodSpec Pod(Api.V1Alpha1.V1Alpha1DeepSeekModel model) =>
        DesiredStateBuilder.Build(model, new OperatorDefaults()).OfType<V1Deployment>().Single().Spec.Template.Spec;

    [Fact]
    public void The_service_account_token_is_not_mounted() =>
        Assert.False(Pod(Models.SinglePod()).AutomountServiceAccountToken);

    [Theory]
    [InlineData(1, "2", "16Gi")]
    [InlineData(4, "8", "64Gi")]
    public void Without_requests_cpu_and_memory_are_requested_per_gpu(int gpus, string cpu, string memory)
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.GpusPerPod = gpus;
        var requests = Pod(model).Containers[0].Resources.Requests;
        Assert.Equal(cpu, requests["cpu"].ToString());
        Assert.Equal(memory, requests["memory"].ToString());
    }

    [Fact]
    public void The_users_requests_and_limits_win_and_a_limit_alone_is_left_to_default_the_request()
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.Resources = new V1ResourceRequirements
        {
            Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m") },
            Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new("96Gi") },
        };
        var resources = Pod(model).Containers[0].Resources;
        Assert.Equal("500m", resources.Requests["cpu"].ToString());
        Assert.False(resources.Requests.ContainsKey("memory"));
        Assert.Equal("96Gi", resources.Limits["memory"].ToString());
    }

    [Fact]
    public void Shared_memory_is_bounded_per_gpu()
    {
        var model = Models.SinglePod();
        model.Spec.Runtime.GpusPerPod = 4;
        var shm = Pod(model).Volumes.Single(v => v.Name == "dshm").EmptyDir;
        Assert.Equal("Memory", shm.Medium);
        Assert.Equal("8Gi", shm.SizeLimit.ToString());
    }
}
