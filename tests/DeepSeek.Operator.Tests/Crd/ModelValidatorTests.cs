using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Crd;

public sealed class ModelValidatorTests
{
    internal static V1Alpha1DeepSeekModel Valid() => new()
    {
        Metadata = new V1ObjectMeta { Name = "m", NamespaceProperty = "default", Uid = "uid-1", Generation = 1 },
        Spec = new DeepSeekModelSpec
        {
            Model = new ModelSpec { Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "weights", Path = "v2" } } },
            Runtime = new RuntimeSpec { Image = "runtime:test" },
        },
    };

    [Fact]
    public void A_valid_model_has_no_errors() => Assert.Empty(ModelValidator.Validate(Valid()));

    [Theory]
    [InlineData("two sources", "spec.model.source")]
    [InlineData("no source", "spec.model.source")]
    [InlineData("min above max", "spec.autoscaling.minReplicas")]
    [InlineData("zero pods", "spec.parallelism.podsPerReplica")]
    [InlineData("ranks not a multiple of pods", "spec.parallelism.expertParallelSize")]
    [InlineData("ranks per pod do not divide gpus", "spec.parallelism.expertParallelSize")]
    [InlineData("cpu pod with two ranks", "spec.parallelism.expertParallelSize")]
    [InlineData("gpu model without a source", "spec.model.source")]
    [InlineData("negative gpus", "spec.runtime.gpusPerPod")]
    [InlineData("bad dtype", "spec.model.dtype")]
    [InlineData("fraction above 1", "spec.engine.kvCacheMemoryFraction")]
    [InlineData("absolute pvc path", "spec.model.source.pvc.path")]
    [InlineData("name too long", "metadata.name")]
    [InlineData("env without a name", "spec.runtime.env[1].name")]
    [InlineData("empty image", "spec.runtime.image")]
    [InlineData("toleration operator Sometimes", "spec.runtime.tolerations[0].operator")]
    [InlineData("node selector key bad key!", "spec.runtime.nodeSelector")]
    [InlineData("gateway weight above 100", "spec.gateway.weight")]
    [InlineData("negative gateway weight", "spec.gateway.weight")]
    public void Invalid_models_name_the_field(string change, string field)
    {
        var model = Valid();
        var spec = model.Spec;
        switch (change)
        {
            case "two sources": spec.Model.Source!.HostPath = new HostPathModelSource { Path = "/x" }; break;
            case "no source": spec.Model.Source!.Pvc = null; break;
            case "min above max": spec.Autoscaling.MinReplicas = 5; spec.Autoscaling.MaxReplicas = 2; break;
            case "zero pods": spec.Parallelism.PodsPerReplica = 0; break;
            case "ranks not a multiple of pods": spec.Parallelism.PodsPerReplica = 2; spec.Runtime.GpusPerPod = 8; spec.Parallelism.ExpertParallelSize = 3; break;
            case "ranks per pod do not divide gpus": spec.Parallelism.PodsPerReplica = 2; spec.Runtime.GpusPerPod = 8; spec.Parallelism.ExpertParallelSize = 6; break;
            case "cpu pod with two ranks": spec.Runtime.GpusPerPod = 0; spec.Parallelism.ExpertParallelSize = 2; break;
            case "gpu model without a source": spec.Model.Source = null; break;
            case "negative gpus": spec.Runtime.GpusPerPod = -1; break;
            case "bad dtype": spec.Model.Dtype = "int4"; break;
            case "fraction above 1": spec.Engine.KvCacheMemoryFraction = 1.5; break;
            case "absolute pvc path": spec.Model.Source!.Pvc!.Path = "/etc"; break;
            case "name too long": model.Metadata.Name = new string('a', 60); break;
            case "env without a name": spec.Runtime.Env = [new V1EnvVar { Name = "A", Value = "1" }, new V1EnvVar { Value = "2" }]; break;
            case "empty image": spec.Runtime.Image = ""; break;
            case "toleration operator Sometimes": spec.Runtime.Tolerations = [new V1Toleration { Key = "k", OperatorProperty = "Sometimes" }]; break;
            case "node selector key bad key!": spec.Runtime.NodeSelector = new Dictionary<string, string> { ["bad key!"] = "x" }; break;
            case "gateway weight above 100": spec.Gateway.Weight = 101; break;
            case "negative gateway weight": spec.Gateway.Weight = -1; break;
        }
        var errors = ModelValidator.Validate(model);
        Assert.Contains(errors, e => e.Field == field);
    }

    [Fact]
    public void Quantities_that_do_not_parse_are_named_on_the_raw_spec()
    {
        var spec = System.Text.Json.Nodes.JsonNode.Parse("""{"runtime":{"resources":{"limits":{"cpu":"lots","memory":"64Gi","nvidia.com/gpu":1},"requests":{"cpu":"500m"}}}}""");
        var error = Assert.Single(ModelValidator.ValidateQuantities(spec));
        Assert.Equal("spec.runtime.resources.limits.cpu", error.Field);
        Assert.Contains("\"lots\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cpu_model_without_a_source_is_valid()
    {
        var model = Valid();
        model.Spec.Runtime.GpusPerPod = 0;
        model.Spec.Model.Source = null;
        Assert.Empty(ModelValidator.Validate(model));
    }

    [Fact]
    public void Consistent_expert_parallel_sizes_pass()
    {
        var model = Valid();
        model.Spec.Parallelism.PodsPerReplica = 2;
        model.Spec.Runtime.GpusPerPod = 8;
        foreach (var ranks in new[] { 2, 4, 8, 16 })
        {
            model.Spec.Parallelism.ExpertParallelSize = ranks;
            Assert.Empty(ModelValidator.Validate(model));
        }
    }
}
