using DeepSeek.Contract;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Operator.Tests.Desired;

/// <summary>
/// Everything the operator hands the runtime is named in runtime/Contract/RuntimeContract.cs: each
/// argument flag and each DEEPSEEK_* variable (settings ConfigMap and container env) is a flag of
/// <see cref="RuntimeContract.FlagsSetByOperator"/>. The runtime side (each of those is a serve option)
/// is checked where the runtime is built.
/// </summary>
public sealed class RuntimeContractTests
{
    private static IEnumerable<V1Alpha1DeepSeekModel> Shapes()
    {
        var single = Models.SinglePod();
        single.Spec.Model.MaxContextLength = 4096;
        single.Spec.Engine.ApiKeySecretRef = new SecretKeyReference { Name = "key" };
        single.Spec.Adapters = [new ModelAdapter { Name = "sql", Source = new ModelSource { HostPath = new HostPathModelSource { Path = "/adapters/sql" } } }];
        yield return single;
        var group = Models.MultiPod();
        group.Spec.Parallelism.RebalanceIntervalSeconds = 300;
        yield return group;
        var dataParallel = Models.MultiPod();
        dataParallel.Spec.Runtime.GpusPerPod = 1;
        dataParallel.Spec.Parallelism = new ParallelismSpec { PodsPerReplica = 4, DataParallelAttention = true };
        yield return dataParallel;
    }

    [Fact]
    public void Every_flag_and_variable_the_operator_sets_is_in_the_contract()
    {
        var known = RuntimeContract.FlagsSetByOperator.ToDictionary(RuntimeContract.VariableFor, f => f, StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var model in Shapes())
        {
            var state = DesiredStateBuilder.Build(model, new OperatorDefaults { RuntimeImage = "r" });
            foreach (var variable in state.OfType<V1ConfigMap>().Single().Data.Keys) Assert.True(known.ContainsKey(variable), $"ConfigMap variable {variable} is not in RuntimeContract");
            var templates = state.OfType<V1Deployment>().Select(d => d.Spec.Template).Concat(state.OfType<V1StatefulSet>().Select(s => s.Spec.Template));
            foreach (var container in templates.SelectMany(t => t.Spec.Containers))
            {
                Assert.Equal(RuntimeContract.ServeVerb, container.Args[0]);
                foreach (var flag in container.Args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
                {
                    Assert.Contains(flag, RuntimeContract.FlagsSetByOperator);
                    used.Add(flag);
                }
                // The group token is the one variable that is no flag's (serve's flag names a file instead).
                foreach (var env in container.Env.Where(e => e.Name.StartsWith(RuntimeContract.EnvironmentPrefix, StringComparison.Ordinal) && e.Name != RuntimeContract.GroupTokenVariable))
                {
                    Assert.True(known.TryGetValue(env.Name, out var flag), $"container variable {env.Name} is not in RuntimeContract");
                    used.Add(flag!);
                }
            }
            foreach (var variable in state.OfType<V1ConfigMap>().Single().Data.Keys) used.Add(known[variable]);
        }
        // And the contract lists nothing the operator does not set.
        Assert.Equal(RuntimeContract.FlagsSetByOperator.Order(StringComparer.Ordinal), used.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_flag_maps_to_its_variable_as_the_runtime_reads_it() =>
        Assert.Equal("DEEPSEEK_KV_CACHE_MEMORY_FRACTION", RuntimeContract.VariableFor(RuntimeContract.Flags.KvCacheMemoryFraction));
}
