using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Crd;
using DeepSeek.Operator.Desired;

namespace DeepSeek.Operator.Validation;

/// <summary>
/// The CRD's rules enforced in code before anything is created: the per-field constraints are read
/// from the same attributes the schema is generated from, and the cross-field CEL rules are written
/// out here once more, so a resource admitted without them (an old CRD, a render from a file) still
/// gets a Degraded condition that names the field instead of half-built workloads.
/// </summary>
public static partial class ModelValidator
{
    /// <summary>Longest metadata.name whose derived names (<c>name-g999-63</c>, Services) stay valid DNS labels.</summary>
    public const int MaxNameLength = 47;

    public static IReadOnlyList<FieldError> Validate(V1Alpha1DeepSeekModel model, OperatorDefaults? defaults = null)
    {
        var errors = new List<FieldError>();
        // The default image depends on the device: a CPU model takes --cpu-runtime-image, a GPU model --runtime-image.
        var imageless = model.Spec?.Runtime is { Image: { Length: > 0 } } ? null : model.Spec?.Runtime ?? new RuntimeSpec();
        if (defaults is not null && imageless is not null && string.IsNullOrEmpty(defaults.RuntimeImageFor(imageless)))
            errors.Add(new("spec.runtime.image", $"is required: the operator was started without {OperatorDefaults.RuntimeImageFlagFor(imageless)}"));
        var name = model.Metadata?.Name;
        if (string.IsNullOrEmpty(name))
            errors.Add(new("metadata.name", "is required"));
        else if (name.Length > MaxNameLength || !IsDns1035Label(name))
            errors.Add(new("metadata.name", $"must be a DNS label of at most {MaxNameLength} characters starting with a letter (the operator derives Service and StatefulSet names from it)"));
        if (model.Spec is null)
        {
            errors.Add(new("spec", "is required"));
            return errors;
        }
        CheckAttributes(model.Spec, "spec", errors);
        CheckCrossFieldRules(model.Spec, errors);
        CheckAdapters(model.Spec, name, errors);
        if (model.Spec.Runtime is { } runtime) CheckEmbedded(runtime, errors);
        return errors;
    }

    /// <summary>
    /// Resource quantities of a model as stored (JSON): a quantity that does not parse cannot even be
    /// read into the typed model, so it is checked here, on the raw spec, with the CRD's pattern.
    /// </summary>
    public static IReadOnlyList<FieldError> ValidateQuantities(JsonNode? spec)
    {
        var errors = new List<FieldError>();
        foreach (var section in new[] { "limits", "requests" })
        {
            if (spec?["runtime"]?["resources"]?[section] is not JsonObject quantities) continue;
            foreach (var (name, value) in quantities)
            {
                var ok = value is JsonValue v && (v.GetValueKind() == JsonValueKind.Number
                    || (v.GetValueKind() == JsonValueKind.String && Quantity().IsMatch(v.GetValue<string>())));
                if (!ok)
                    errors.Add(new($"spec.runtime.resources.{section}.{name}", $"must be a quantity such as 500m, 2 or 64Gi (got {value?.ToJsonString() ?? "null"})"));
            }
        }
        return errors;
    }

    /// <summary>The API server's rules for the Kubernetes types the runtime section passes to pods (see EmbeddedFieldRules).</summary>
    private static void CheckEmbedded(RuntimeSpec runtime, List<FieldError> errors)
    {
        for (var i = 0; i < (runtime.Env?.Count ?? 0); i++)
            if (string.IsNullOrEmpty(runtime.Env![i]?.Name))
                errors.Add(new($"spec.runtime.env[{i}].name", "is required"));
        for (var i = 0; i < (runtime.Tolerations?.Count ?? 0); i++)
        {
            var toleration = runtime.Tolerations![i];
            if (toleration?.OperatorProperty is { } op && !KubernetesSyntax.TolerationOperators.Contains(op))
                errors.Add(new($"spec.runtime.tolerations[{i}].operator", $"must be Exists or Equal (got {op})"));
            if (toleration?.Effect is { } effect && !KubernetesSyntax.TaintEffects.Contains(effect))
                errors.Add(new($"spec.runtime.tolerations[{i}].effect", $"must be NoSchedule, PreferNoSchedule or NoExecute (got {effect})"));
        }
        foreach (var (key, value) in runtime.NodeSelector ?? new Dictionary<string, string>())
        {
            if (!LabelKey().IsMatch(key))
                errors.Add(new("spec.runtime.nodeSelector", typeof(RuntimeSpec).GetProperty(nameof(RuntimeSpec.NodeSelector))!.GetCustomAttribute<CelRuleAttribute>()!.Message));
            if (value is null || value.Length > KubernetesSyntax.LabelValueMaxLength || !LabelValue().IsMatch(value))
                errors.Add(new($"spec.runtime.nodeSelector.{key}", "must be a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"));
        }
    }

    [GeneratedRegex(KubernetesSyntax.QuantityPattern)]
    private static partial Regex Quantity();

    [GeneratedRegex(KubernetesSyntax.LabelKeyPattern)]
    private static partial Regex LabelKey();

    [GeneratedRegex(ModelDownload.RepositoryPattern)]
    private static partial Regex RepositoryId();

    // The CRD's rule as CEL runs it: RE2 matches() finds the pattern anywhere unless anchored, as here.
    [GeneratedRegex("^https?://[^/?# ]+")]
    private static partial Regex HubEndpoint();

    [GeneratedRegex(KubernetesSyntax.LabelValuePattern)]
    private static partial Regex LabelValue();

    private static void CheckCrossFieldRules(DeepSeekModelSpec spec, List<FieldError> errors)
    {
        var source = spec.Model?.Source;
        if (source is null && spec.Model is not null && (spec.Runtime is null || !RuntimeDevice.IsCpu(spec.Runtime)))
            errors.Add(new("spec.model.source", DeepSeekModelSpec.SourceMessage));
        if (source is not null) CheckSource(source, "spec.model.source", errors);
        if (spec.Model is { Quantization: "int4", Dtype: not (null or "bfloat16") })
            errors.Add(new("spec.model.quantization", MessageOf<ModelSpec>()));
        if (spec.Autoscaling is { } autoscaling && autoscaling.MinReplicas > autoscaling.MaxReplicas)
            errors.Add(new("spec.autoscaling.minReplicas", MessageOf<AutoscalingSpec>()));
        if (spec.Parallelism is { DataParallelAttention: true, PodsPerReplica: > 0 and var dpPods } && spec.Runtime is not null
            && ModelShape.ExpertParallelSizeOf(spec) != dpPods)
            errors.Add(new("spec.parallelism.dataParallelAttention", DeepSeekModelSpec.DataParallelRanksMessage));
        if (spec.Parallelism is { ExpertParallelSize: { } ranks, PodsPerReplica: > 0 and var pods } && spec.Runtime is { } runtime)
        {
            if (ranks % pods != 0 || runtime.GpusPerPod % (ranks / pods) != 0)
                errors.Add(new("spec.parallelism.expertParallelSize", DeepSeekModelSpec.ExpertParallelMessage));
            if (RuntimeDevice.IsCpu(runtime) && ranks != pods)
                errors.Add(new("spec.parallelism.expertParallelSize", DeepSeekModelSpec.CpuRanksMessage));
        }
    }

    /// <summary>
    /// spec.adapters: each entry's own rules (lists are not walked by <see cref="CheckAttributes"/>), its source as
    /// model.source's, unique names other than the served name, and no expert-parallel group (the runtime serves
    /// adapters on one rank only).
    /// </summary>
    private static void CheckAdapters(DeepSeekModelSpec spec, string? name, List<FieldError> errors)
    {
        if (spec.Adapters is not { Count: > 0 } adapters) return;
        var served = spec.Model?.ServedName ?? name;
        for (var i = 0; i < adapters.Count; i++)
        {
            var field = $"spec.adapters[{i}]";
            if (adapters[i] is not { } adapter)
            {
                errors.Add(new(field, "is required"));
                continue;
            }
            CheckAttributes(adapter, field, errors);
            if (adapter.Name.Length > 0 && !AdapterName().IsMatch(adapter.Name))
                errors.Add(new($"{field}.name", MessageOf<ModelAdapter>(nameof(ModelAdapter.Name))));
            if (adapter.Name == served)
                errors.Add(new($"{field}.name", $"must differ from the served model name '{served}': clients pick the base model or an adapter by this name"));
            if (adapters.Take(i).Any(other => other?.Name == adapter.Name))
                errors.Add(new("spec.adapters", DeepSeekModelSpec.AdapterNamesMessage));
            if (adapter.Source is { } source) CheckSource(source, $"{field}.source", errors);
        }
        if (spec.Runtime is not null && ModelShape.ExpertParallelSizeOf(spec) > 1)
            errors.Add(new("spec.adapters", "are not served by an expert-parallel group yet: leave them out, or serve the model with parallelism.expertParallelSize 1"));
    }

    [GeneratedRegex(ModelAdapter.NamePattern)]
    private static partial Regex AdapterName();

    /// <summary>The rules of a source at <paramref name="path"/> (model.source, or an adapter's), named as the CRD's messages name them.</summary>
    private static void CheckSource(ModelSource source, string path, List<FieldError> errors)
    {
        var set = new[] { source.Pvc is not null, source.HostPath is not null, source.Image is not null }.Count(x => x);
        if (set != 1) errors.Add(new(path, MessageOf<ModelSource>()));
        if (source.Pvc is { } pvc && (pvc.Path.StartsWith('/') || pvc.Path.Contains("..", StringComparison.Ordinal)))
            errors.Add(new($"{path}.pvc.path", MessageOf<PvcModelSource>()));
        if (source.Pvc?.Download is { } download)
        {
            if (!string.IsNullOrEmpty(download.Repo) && !RepositoryId().IsMatch(download.Repo))
                errors.Add(new($"{path}.pvc.download.repo", MessageOf<ModelDownload>(nameof(ModelDownload.Repo))));
            if (download.Endpoint is { } endpoint && !HubEndpoint().IsMatch(endpoint))
                errors.Add(new($"{path}.pvc.download.endpoint", MessageOf<ModelDownload>(nameof(ModelDownload.Endpoint))));
        }
        if (source.HostPath is { } hostPath && !hostPath.Path.StartsWith('/'))
            errors.Add(new($"{path}.hostPath.path", MessageOf<HostPathModelSource>()));
    }

    private static string MessageOf<T>() => typeof(T).GetCustomAttribute<CelRuleAttribute>()!.Message;

    private static string MessageOf<T>(string property) => typeof(T).GetProperty(property)!.GetCustomAttribute<CelRuleAttribute>()!.Message;

    private static void CheckAttributes(object value, string path, List<FieldError> errors)
    {
        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var field = path + "." + SchemaBuilder.JsonName(property);
            var propertyValue = property.GetValue(value);
            var context = new ValidationContext(value) { MemberName = property.Name, DisplayName = field };
            foreach (var attribute in property.GetCustomAttributes<ValidationAttribute>())
            {
                if (propertyValue is null && attribute is not RequiredAttribute) continue;
                if (attribute.GetValidationResult(propertyValue, context) is { } result && result != ValidationResult.Success)
                    errors.Add(new(field, Describe(attribute, propertyValue)));
            }
            if (propertyValue is null) continue;
            if (IsOwnType(property.PropertyType)) CheckAttributes(propertyValue, field, errors);
        }
    }

    private static bool IsOwnType(Type type) =>
        type.IsClass && type != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(type) && type.Namespace == typeof(DeepSeekModelSpec).Namespace;

    private static string Describe(ValidationAttribute attribute, object? value) => attribute switch
    {
        RequiredAttribute => "is required",
        RangeAttribute r => $"must be between {r.Minimum} and {r.Maximum} (got {value})",
        MinLengthAttribute m => value is string ? $"must have at least {m.Length} characters" : $"must have at least {m.Length} entries",
        MaxLengthAttribute m => value is string ? $"must have at most {m.Length} characters" : $"must have at most {m.Length} entries",
        AllowedValuesAttribute a => $"must be one of {string.Join(", ", a.Values)} (got {value})",
        _ => attribute.FormatErrorMessage("value"),
    };

    private static bool IsDns1035Label(string name) =>
        char.IsAsciiLetterLower(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && name[^1] != '-';
}
