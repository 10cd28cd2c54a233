using DeepSeek.Contract;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Status;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>spec.adapters: each LoRA adapter folder mounted read-only at /adapters/NAME and passed to serve, listed in status; what is refused.</summary>
public sealed class ModelAdapterTests
{
    private static readonly OperatorDefaults Defaults = new() { RuntimeImage = "runtime:default" };

    private static V1Alpha1DeepSeekModel WithAdapters()
    {
        var model = Models.SinglePod();
        model.Spec.Adapters =
        [
            new ModelAdapter { Name = "sql", Source = new ModelSource { Pvc = new PvcModelSource { ClaimName = "adapters", Path = "sql-lora", Download = new ModelDownload { Repo = "team/sql-lora" } } } },
            new ModelAdapter { Name = "chat", Source = new ModelSource { Image = new ImageModelSource { Reference = "registry/chat-lora:1" } } },
        ];
        return model;
    }

    private static V1PodSpec Pod(V1Alpha1DeepSeekModel model) =>
        DesiredStateBuilder.Build(model, Defaults).OfType<V1Deployment>().Single().Spec.Template.Spec;

    [Fact]
    public void Each_adapter_is_mounted_read_only_under_adapters_and_named_to_serve()
    {
        var pod = Pod(WithAdapters());
        var runtime = pod.Containers.Single();

        var args = runtime.Args.ToList();
        var at = args.IndexOf(RuntimeContract.Flags.LoraModules);
        Assert.Equal(["sql=/adapters/sql", "chat=/adapters/chat"], args[(at + 1)..(at + 3)]);
        Assert.Contains(runtime.Env, e => e.Name == "DEEPSEEK_MAX_LORAS" && e.Value == "2");
        var sql = runtime.VolumeMounts.Single(m => m.MountPath == "/adapters/sql");
        Assert.Equal(("adapter-0", (string?)"sql-lora", (bool?)true), (sql.Name, sql.SubPath, sql.ReadOnlyProperty));
        var chat = runtime.VolumeMounts.Single(m => m.MountPath == "/adapters/chat");
        Assert.Equal(("adapter-1", (string?)null, (bool?)true), (chat.Name, chat.SubPath, chat.ReadOnlyProperty));
        Assert.Equal("adapters", pod.Volumes.Single(v => v.Name == "adapter-0").PersistentVolumeClaim.ClaimName);
        Assert.Equal("registry/chat-lora:1", pod.Volumes.Single(v => v.Name == "adapter-1").Image.Reference);

        // The adapter's download writes its own claim, as the model's does; the runtime only reads it.
        var download = Assert.Single(pod.InitContainers);
        Assert.Equal("download-adapter-0", download.Name);
        Assert.Equal(["download", "team/sql-lora", "--revision", "main", "--output", "/claim/sql-lora", "--skip-if-complete"], download.Args);
        Assert.Equal("adapter-0", Assert.Single(download.VolumeMounts, m => m.MountPath == "/claim").Name);

        // Without adapters nothing of this appears.
        var plain = Pod(Models.SinglePod());
        Assert.DoesNotContain(RuntimeContract.Flags.LoraModules, plain.Containers.Single().Args);
        Assert.DoesNotContain(plain.Volumes, v => v.Name.StartsWith("adapter-", StringComparison.Ordinal));
    }

    [Fact]
    public void Status_lists_the_adapters_the_pods_are_given()
    {
        var status = StatusCalculator.Compute(WithAdapters(), [], failure: null, DateTime.UnixEpoch);
        Assert.Equal(["sql", "chat"], status.Adapters!);
        Assert.Null(StatusCalculator.Compute(Models.SinglePod(), [], failure: null, DateTime.UnixEpoch).Adapters);
    }

    [Fact]
    public void A_repeated_name_the_served_name_a_bad_source_and_an_expert_parallel_group_are_refused_by_field()
    {
        var model = WithAdapters();
        model.Spec.Model.ServedName = "base";
        model.Spec.Adapters!.Add(new ModelAdapter { Name = "sql", Source = new ModelSource { HostPath = new HostPathModelSource { Path = "relative" } } });
        model.Spec.Adapters.Add(new ModelAdapter { Name = "base", Source = new ModelSource() });
        model.Spec.Adapters.Add(new ModelAdapter { Name = "Not_A_Label", Source = new ModelSource { Image = new ImageModelSource { Reference = "r/x:1" } } });

        var errors = ModelValidator.Validate(model).Select(e => e.Field).ToList();
        Assert.Equal(["spec.adapters", "spec.adapters[2].source.hostPath.path", "spec.adapters[3].name", "spec.adapters[3].source", "spec.adapters[4].name"], errors.Order(StringComparer.Ordinal));
        Assert.Empty(ModelValidator.Validate(WithAdapters()));

        var group = Models.MultiPod();
        group.Spec.Adapters = WithAdapters().Spec.Adapters;
        Assert.Contains(ModelValidator.Validate(group), e => e.Field == "spec.adapters" && e.Message.Contains("expert-parallel", StringComparison.Ordinal));
    }
}
