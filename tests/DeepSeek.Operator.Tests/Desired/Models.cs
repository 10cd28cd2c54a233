using DeepSeek.Operator.Api.V1Alpha1;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>Models for the builder and status tests: valid, with a uid, in namespace "serving".</summary>
internal static class Models
{
    public const string Uid = "6f1c2a9e-0b6d-4c1e-9a55-2d0e7f3b8c41";

    public static V1Alpha1DeepSeekModel SinglePod(int replicas = 2) => new()
    {
        Metadata = new V1ObjectMeta { Name = "lite", NamespaceProperty = "serving", Uid = Uid, Generation = 3 },
        Spec = new DeepSeekModelSpec
        {
            Model = new ModelSpec { Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "weights", Path = "deepseek-v2-lite" } } },
            Runtime = new RuntimeSpec { Image = "runtime:1.2.3", GpusPerPod = 1 },
            Replicas = replicas,
        },
    };

    /// <summary>A model without GPUs, image or source: the CPU runtime image's embedded demo model, as samples/serving_v1alpha1_deepseekmodel_cpu.yaml.</summary>
    public static V1Alpha1DeepSeekModel Cpu(int replicas = 2)
    {
        var model = SinglePod(replicas);
        model.Metadata.Name = "demo";
        model.Spec.Model.Source = null;
        model.Spec.Runtime = new RuntimeSpec { GpusPerPod = 0 };
        return model;
    }

    /// <summary>Two pods of 8 GPUs per replica, 16 expert-parallel ranks.</summary>
    public static V1Alpha1DeepSeekModel MultiPod(int replicas = 2)
    {
        var model = SinglePod(replicas);
        model.Metadata.Name = "v3";
        model.Spec.Runtime.GpusPerPod = 8;
        model.Spec.Parallelism = new ParallelismSpec { PodsPerReplica = 2, ExpertParallelSize = 16 };
        return model;
    }
}
