using System.Text.Json.Nodes;
using DeepSeek.KubernetesTestServer;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Crd;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Tests.Support;
using DeepSeek.Operator.Validation;
using k8s;

namespace DeepSeek.Operator.Tests.Crd;

/// <summary>
/// The CRD's CEL rules evaluated by a real CEL implementation (not restated in C#), on the samples and
/// on tables of invalid and valid specs, and checked against ModelValidator: admission by the API
/// server and the operator's own check must accept and refuse the same resources, naming the same field.
/// </summary>
public sealed class CelRuleTests
{
    private static readonly JsonObject Schema =
        YamlJson.ParseAll(File.ReadAllText(RepositoryFiles.PathOf("crds", DeepSeekModelCrd.FileName)))[0]!
            ["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!.AsObject();

    private static readonly IReadOnlyList<CrdValidationRule> Rules = CrdValidationRule.Collect(Schema);

    [Fact]
    public void Crd_carries_the_cross_field_rules_at_their_nodes()
    {
        Assert.Equal(
            ["spec", "spec", "spec", "spec", "spec.adapters", "spec.adapters[*].name", "spec.adapters[*].source", "spec.adapters[*].source.hostPath", "spec.adapters[*].source.pvc",
                "spec.adapters[*].source.pvc.download.endpoint", "spec.adapters[*].source.pvc.download.repo", "spec.autoscaling", "spec.model", "spec.model.source", "spec.model.source.hostPath", "spec.model.source.pvc",
                "spec.model.source.pvc.download.endpoint", "spec.model.source.pvc.download.repo", "spec.runtime.nodeSelector"],
            Rules.Select(r => r.SchemaPath).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_rule_has_a_message_that_names_the_field_it_blames()
    {
        Assert.All(Rules, rule =>
        {
            Assert.False(string.IsNullOrWhiteSpace(rule.Message), $"rule at {rule.SchemaPath} has no message");
            var field = rule.BlamedField["spec.".Length..];
            Assert.True(rule.Message.Contains(field, StringComparison.Ordinal), $"message \"{rule.Message}\" of the rule at {rule.SchemaPath} does not name {field}");
            Assert.True(rule.FieldPathExistsInSchema(), $"fieldPath {rule.FieldPath} of the rule at {rule.SchemaPath} is not a property there");
        });
    }

    public static TheoryData<string> Samples => new()
    {
        "serving_v1alpha1_deepseekmodel_v2lite.yaml",
        "serving_v1alpha1_deepseekmodel_v3_expert_parallel.yaml",
        "serving_v1alpha1_deepseekmodel_autoscaled.yaml",
        "serving_v1alpha1_deepseekmodel_cpu.yaml",
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Every_sample_passes_every_rule(string file)
    {
        var sample = YamlJson.ParseAll(File.ReadAllText(RepositoryFiles.PathOf("samples", file)))[0]!;
        var outcomes = await EvaluateAsync(sample);
        Assert.NotEmpty(outcomes);
        Assert.All(outcomes, o => Assert.True(o.Result == "true", $"{file}: rule at {o.Rule.SchemaPath} gave {o.Result}: {o.Rule.Rule}"));
    }

    // Each spec is the base (a PVC-backed model) with a JSON merge patch on .spec; each is structurally
    // valid, so only its CEL rule (and the validator's cross-field check) can refuse it.
    [Theory]
    [InlineData("two sources", """{"model":{"source":{"hostPath":{"path":"/m"}}}}""", "spec.model.source")]
    [InlineData("three sources", """{"model":{"source":{"hostPath":{"path":"/m"},"image":{"reference":"r/m:1"}}}}""", "spec.model.source")]
    [InlineData("no source", """{"model":{"source":{"pvc":null}}}""", "spec.model.source")]
    [InlineData("min above max", """{"autoscaling":{"enabled":true,"minReplicas":5,"maxReplicas":2}}""", "spec.autoscaling.minReplicas")]
    [InlineData("min above the default max", """{"autoscaling":{"minReplicas":5}}""", "spec.autoscaling.minReplicas")]
    [InlineData("ranks not a multiple of pods", """{"runtime":{"gpusPerPod":8},"parallelism":{"podsPerReplica":2,"expertParallelSize":3}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("fewer ranks than pods", """{"runtime":{"gpusPerPod":8},"parallelism":{"podsPerReplica":4,"expertParallelSize":2}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("ranks per pod do not divide gpus", """{"runtime":{"gpusPerPod":8},"parallelism":{"podsPerReplica":2,"expertParallelSize":6}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("more ranks per pod than gpus", """{"runtime":{"gpusPerPod":2},"parallelism":{"expertParallelSize":4}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("ranks against the default gpusPerPod", """{"parallelism":{"expertParallelSize":2}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("cpu with more ranks than its one pod", """{"runtime":{"gpusPerPod":0},"parallelism":{"expertParallelSize":2}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("cpu group with two ranks per pod", """{"runtime":{"gpusPerPod":0},"parallelism":{"podsPerReplica":2,"expertParallelSize":4}}""", "spec.parallelism.expertParallelSize")]
    [InlineData("gpu model without a source", """{"model":{"source":null},"runtime":{"gpusPerPod":2}}""", "spec.model.source")]
    [InlineData("default gpusPerPod without a source", """{"model":{"source":null}}""", "spec.model.source")]
    [InlineData("absolute pvc path", """{"model":{"source":{"pvc":{"path":"/etc"}}}}""", "spec.model.source.pvc.path")]
    [InlineData("pvc path climbing out", """{"model":{"source":{"pvc":{"path":"models/../../etc"}}}}""", "spec.model.source.pvc.path")]
    [InlineData("pvc path of only ..", """{"model":{"source":{"pvc":{"path":".."}}}}""", "spec.model.source.pvc.path")]
    [InlineData("relative hostPath", """{"model":{"source":{"pvc":null,"hostPath":{"path":"models/v2"}}}}""", "spec.model.source.hostPath.path")]
    [InlineData("dot-relative hostPath", """{"model":{"source":{"pvc":null,"hostPath":{"path":"./v2"}}}}""", "spec.model.source.hostPath.path")]
    [InlineData("node selector key with a space", """{"runtime":{"nodeSelector":{"bad key!":"x"}}}""", "spec.runtime.nodeSelector")]
    [InlineData("node selector key with an empty name", """{"runtime":{"nodeSelector":{"nvidia.com/":"true"}}}""", "spec.runtime.nodeSelector")]
    [InlineData("node selector name of 64 characters", """{"runtime":{"nodeSelector":{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":"x"}}}""", "spec.runtime.nodeSelector")]
    [InlineData("int4 with float32", """{"model":{"dtype":"float32","quantization":"int4"}}""", "spec.model.quantization")]
    [InlineData("data-parallel attention with eight ranks in a pod", """{"runtime":{"gpusPerPod":8},"parallelism":{"dataParallelAttention":true}}""", "spec.parallelism.dataParallelAttention")]
    [InlineData("data-parallel attention with two ranks per pod", """{"runtime":{"gpusPerPod":2},"parallelism":{"podsPerReplica":2,"expertParallelSize":4,"dataParallelAttention":true}}""", "spec.parallelism.dataParallelAttention")]
    [InlineData("int4 with float16", """{"model":{"dtype":"float16","quantization":"int4"}}""", "spec.model.quantization")]
    [InlineData("download repo with a space", """{"model":{"source":{"pvc":{"download":{"repo":"deepseek ai/V3"}}}}}""", "spec.model.source.pvc.download.repo")]
    [InlineData("download repo with two slashes", """{"model":{"source":{"pvc":{"download":{"repo":"a/b/c"}}}}}""", "spec.model.source.pvc.download.repo")]
    [InlineData("download endpoint without a scheme", """{"model":{"source":{"pvc":{"download":{"repo":"a/b","endpoint":"hub.example.com"}}}}}""", "spec.model.source.pvc.download.endpoint")]
    [InlineData("two adapters of one name", """{"adapters":[{"name":"a","source":{"image":{"reference":"r/a:1"}}},{"name":"a","source":{"image":{"reference":"r/b:1"}}}]}""", "spec.adapters")]
    [InlineData("download endpoint over ftp", """{"model":{"source":{"pvc":{"download":{"repo":"a/b","endpoint":"ftp://hub.example.com"}}}}}""", "spec.model.source.pvc.download.endpoint")]
    public async Task Invalid_spec_fails_exactly_its_rule_and_the_validator_names_the_same_field(string change, string patch, string field)
    {
        var model = Model(patch);
        Assert.Empty(SchemaCheck.Validate(model, Schema));

        var outcomes = await EvaluateAsync(model);
        Assert.All(outcomes, o => Assert.True(o.Result is "true" or "false", $"{change}: rule at {o.Rule.SchemaPath} gave {o.Result}"));
        var failed = Assert.Single(outcomes, o => o.Result == "false");
        Assert.Equal(field, failed.Rule.BlamedField);

        var errors = ModelValidator.Validate(KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(model.ToJsonString()));
        Assert.True(errors.Count > 0 && errors.All(e => e.Field == field), $"{change}: ModelValidator reported [{string.Join("; ", errors)}], expected only {field}");
        Assert.Contains(errors, e => e.Message == failed.Rule.Message);
    }

    [Theory]
    [InlineData("the base", "{}")]
    [InlineData("two adapters", """{"adapters":[{"name":"sql-v2","source":{"pvc":{"claimName":"a","path":"sql","download":{"repo":"t/sql"}}}},{"name":"chat","source":{"hostPath":{"path":"/a/chat"}}}]}""")]
    [InlineData("pvc at the claim's root by default", """{"model":{"source":{"pvc":{"path":null}}}}""")]
    [InlineData("pvc path with dots in a name", """{"model":{"source":{"pvc":{"path":"DeepSeek-V2.5/.cache"}}}}""")]
    [InlineData("hostPath at the root", """{"model":{"source":{"pvc":null,"hostPath":{"path":"/"}}}}""")]
    [InlineData("image source", """{"model":{"source":{"pvc":null,"image":{"reference":"r/m:1"}}}}""")]
    [InlineData("min equal to max", """{"autoscaling":{"enabled":true,"minReplicas":3,"maxReplicas":3}}""")]
    [InlineData("max equal to the default min", """{"autoscaling":{"maxReplicas":1}}""")]
    [InlineData("one rank per gpu", """{"runtime":{"gpusPerPod":8},"parallelism":{"podsPerReplica":2,"expertParallelSize":16}}""")]
    [InlineData("one rank per pod", """{"runtime":{"gpusPerPod":8},"parallelism":{"podsPerReplica":2,"expertParallelSize":2}}""")]
    [InlineData("ranks dividing gpus", """{"runtime":{"gpusPerPod":8},"parallelism":{"podsPerReplica":4,"expertParallelSize":16}}""")]
    [InlineData("ranks with default pods and gpus", """{"parallelism":{"expertParallelSize":1}}""")]
    [InlineData("pods without an explicit rank count", """{"runtime":{"gpusPerPod":4},"parallelism":{"podsPerReplica":3}}""")]
    [InlineData("cpu model with a source", """{"runtime":{"gpusPerPod":0}}""")]
    [InlineData("cpu model of the image's embedded model", """{"model":{"source":null},"runtime":{"gpusPerPod":0}}""")]
    [InlineData("cpu model with one rank", """{"runtime":{"gpusPerPod":0},"parallelism":{"expertParallelSize":1}}""")]
    [InlineData("cpu group of one rank per pod", """{"runtime":{"gpusPerPod":0},"parallelism":{"podsPerReplica":3,"expertParallelSize":3}}""")]
    [InlineData("cpu group with the default rank count", """{"runtime":{"gpusPerPod":0},"parallelism":{"podsPerReplica":2}}""")]
    [InlineData("prefixed node selector keys", """{"runtime":{"nodeSelector":{"nvidia.com/gpu.product":"NVIDIA-H200","kubernetes.io/arch":"amd64","pool":""}}}""")]
    [InlineData("int4 with the default dtype", """{"model":{"quantization":"int4"}}""")]
    [InlineData("int4 with bfloat16", """{"model":{"dtype":"bfloat16","quantization":"int4"}}""")]
    [InlineData("fp8 with the default dtype", """{"model":{"quantization":"fp8"}}""")]
    [InlineData("fp8 with float32", """{"model":{"dtype":"float32","quantization":"fp8"}}""")]
    [InlineData("data-parallel attention over pods of one GPU", """{"parallelism":{"podsPerReplica":4,"dataParallelAttention":true}}""")]
    [InlineData("data-parallel attention with the size given", """{"runtime":{"gpusPerPod":1},"parallelism":{"podsPerReplica":3,"expertParallelSize":3,"dataParallelAttention":true}}""")]
    [InlineData("data-parallel attention on CPU pods", """{"runtime":{"gpusPerPod":0},"parallelism":{"podsPerReplica":3,"dataParallelAttention":true}}""")]
    [InlineData("float32 without quantization", """{"model":{"dtype":"float32","quantization":"none"}}""")]
    [InlineData("download with the default revision", """{"model":{"source":{"pvc":{"download":{"repo":"deepseek-ai/DeepSeek-V2-Lite"}}}}}""")]
    [InlineData("download of a repo without an owner", """{"model":{"source":{"pvc":{"download":{"repo":"gpt2"}}}}}""")]
    [InlineData("download from a private hub with a token", """{"model":{"source":{"pvc":{"download":{"repo":"team/m.v2_x-1","revision":"v1.0","endpoint":"http://hub.internal:8080/","tokenSecretRef":{"name":"hub"}}}}}}""")]
    public async Task Valid_edge_case_passes_every_rule_and_the_validator(string change, string patch)
    {
        var model = Model(patch);
        Assert.Empty(SchemaCheck.Validate(model, Schema));

        var outcomes = await EvaluateAsync(model);
        Assert.All(outcomes, o => Assert.True(o.Result == "true", $"{change}: rule at {o.Rule.SchemaPath} gave {o.Result}: {o.Rule.Rule}"));
        Assert.Empty(ModelValidator.Validate(KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(model.ToJsonString())));
    }

    // Mistakes the schema itself refuses (required, enum, minLength, pattern): the validator must refuse
    // them too, naming the same field, for resources admitted under an older CRD or rendered from a file.
    [Theory]
    [InlineData("env entry without a name", """{"runtime":{"env":[{"value":"1"}]}}""", "spec.runtime.env[0].name")]
    [InlineData("env entry with an empty name", """{"runtime":{"env":[{"name":"","value":"1"}]}}""", "spec.runtime.env[0].name")]
    [InlineData("empty image", """{"runtime":{"image":""}}""", "spec.runtime.image")]
    [InlineData("negative gpus", """{"runtime":{"gpusPerPod":-1}}""", "spec.runtime.gpusPerPod")]
    [InlineData("toleration operator Sometimes", """{"runtime":{"tolerations":[{"key":"k","operator":"Sometimes"}]}}""", "spec.runtime.tolerations[0].operator")]
    [InlineData("toleration effect Never", """{"runtime":{"tolerations":[{"key":"k","operator":"Exists","effect":"Never"}]}}""", "spec.runtime.tolerations[0].effect")]
    [InlineData("node selector value with a space", """{"runtime":{"nodeSelector":{"pool":"gpu pool"}}}""", "spec.runtime.nodeSelector.pool")]
    [InlineData("cpu of lots", """{"runtime":{"resources":{"limits":{"cpu":"lots"}}}}""", "spec.runtime.resources.limits.cpu")]
    [InlineData("memory with a unit typo", """{"runtime":{"resources":{"requests":{"memory":"64GB"}}}}""", "spec.runtime.resources.requests.memory")]
    [InlineData("download with an empty repo", """{"model":{"source":{"pvc":{"download":{"repo":""}}}}}""", "spec.model.source.pvc.download.repo")]
    [InlineData("download without a repo", """{"model":{"source":{"pvc":{"download":{"revision":"main"}}}}}""", "spec.model.source.pvc.download.repo")]
    [InlineData("download with an empty revision", """{"model":{"source":{"pvc":{"download":{"repo":"a/b","revision":""}}}}}""", "spec.model.source.pvc.download.revision")]
    [InlineData("quantization fp4", """{"model":{"quantization":"fp4"}}""", "spec.model.quantization")]
    [InlineData("dtype int8", """{"model":{"dtype":"int8"}}""", "spec.model.dtype")]
    public void Structurally_invalid_spec_is_refused_by_the_schema_and_the_validator_at_the_same_field(string change, string patch, string field)
    {
        var model = Model(patch);
        var schemaErrors = SchemaCheck.Validate(model, Schema);
        Assert.True(schemaErrors.Count == 1 && schemaErrors[0].StartsWith("." + field + ":", StringComparison.Ordinal), $"{change}: the schema reported [{string.Join("; ", schemaErrors)}], expected {field}");

        var quantityErrors = ModelValidator.ValidateQuantities(model["spec"]);
        var errors = quantityErrors.Count > 0 ? quantityErrors : ModelValidator.Validate(KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(model.ToJsonString()));
        Assert.True(errors.Count > 0 && errors.All(e => e.Field == field), $"{change}: ModelValidator reported [{string.Join("; ", errors)}], expected only {field}");
    }

    // download exists only under pvc: a hub download needs a volume the pod may write, which hostPath
    // (a node's folder) and image (a read-only image volume) are not.
    [Theory]
    [InlineData("""{"model":{"source":{"pvc":null,"hostPath":{"path":"/m","download":{"repo":"a/b"}}}}}""", ".spec.model.source.hostPath.download: unknown field")]
    [InlineData("""{"model":{"source":{"pvc":null,"image":{"reference":"r/m:1","download":{"repo":"a/b"}}}}}""", ".spec.model.source.image.download: unknown field")]
    [InlineData("""{"model":{"source":{"download":{"repo":"a/b"}}}}""", ".spec.model.source.download: unknown field")]
    public void Download_is_refused_anywhere_but_under_pvc(string patch, string error)
    {
        Assert.Equal([error], SchemaCheck.Validate(Model(patch), Schema));
    }

    [Fact]
    public async Task Cel_sees_integers_as_int_and_strings_as_strings()
    {
        // Guards the evaluator itself: with int operands `/` truncates, and a double operand would make `%` fail to resolve.
        var schema = JsonNode.Parse("""{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"s":{"type":"string"},"f":{"type":"number"}}}""")!.AsObject();
        var self = JsonNode.Parse("""{"a":7,"b":2,"s":"8","f":7}""")!;
        var results = await CelEvaluator.EvaluateAsync(
        [
            ("self.a / self.b == 3 && self.a % self.b == 1", self, schema),
            ("self.s == '8' && self.s.size() == 1", self, schema),
            ("self.f % self.b == 1", self, schema),
            ("self.missing == 1", self, schema),
        ]);
        Assert.Equal("true", results[0]);
        Assert.Equal("true", results[1]);
        Assert.StartsWith("error: ", results[2], StringComparison.Ordinal);
        Assert.StartsWith("error: ", results[3], StringComparison.Ordinal);
    }

    private static JsonNode Model(string specPatch)
    {
        var model = JsonNode.Parse("""
            {"apiVersion":"serving.deepseek-operator.io/v1alpha1","kind":"DeepSeekModel",
             "metadata":{"name":"m","namespace":"default"},
             "spec":{"model":{"source":{"pvc":{"claimName":"weights","path":"v2"}}}}}
            """)!;
        model["spec"] = JsonMergePatch.Apply(model["spec"]!.DeepClone(), JsonNode.Parse(specPatch));
        return model;
    }

    /// <summary>Every rule on every value it applies to, after defaulting, as the API server evaluates them.</summary>
    private static async Task<List<(CrdValidationRule Rule, string Result)>> EvaluateAsync(JsonNode model)
    {
        var defaulted = StructuralDefaults.Apply(model, Schema);
        var cases = Rules.SelectMany(rule => rule.ValuesIn(defaulted).Select(value => (Rule: rule, Value: value))).ToList();
        var results = await CelEvaluator.EvaluateAsync(cases.Select(c => (c.Rule.Rule, c.Value, c.Rule.Schema)).ToList());
        var skipped = results.Where(r => r.StartsWith("skipped: ", StringComparison.Ordinal)).ToList();
        Assert.True(skipped.Count == 0, "rules this test cannot evaluate (extend tests/clients/cel-check.mjs): " + string.Join("; ", skipped));
        return cases.Zip(results, (c, r) => (c.Rule, r)).ToList();
    }
}
