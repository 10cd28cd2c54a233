using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
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
public static class ModelValidator
{
    /// <summary>Longest metadata.name whose derived names (<c>name-g999-63</c>, Services) stay valid DNS labels.</summary>
    public const int MaxNameLength = 47;

    public static IReadOnlyList<FieldError> Validate(V1Alpha1DeepSeekModel model, OperatorDefaults? defaults = null)
    {
        var errors = new List<FieldError>();
        if (defaults is not null && string.IsNullOrEmpty(model.Spec?.Runtime?.Image) && string.IsNullOrEmpty(defaults.RuntimeImage))
            errors.Add(new("spec.runtime.image", "is required: the operator was started without --runtime-image"));
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
        return errors;
    }

    private static void CheckCrossFieldRules(DeepSeekModelSpec spec, List<FieldError> errors)
    {
        var source = spec.Model?.Source;
        if (source is not null)
        {
            var set = new[] { source.Pvc is not null, source.HostPath is not null, source.Image is not null }.Count(x => x);
            if (set != 1) errors.Add(new("spec.model.source", MessageOf<ModelSource>()));
            if (source.Pvc is { } pvc && (pvc.Path.StartsWith('/') || pvc.Path.Contains("..", StringComparison.Ordinal)))
                errors.Add(new("spec.model.source.pvc.path", MessageOf<PvcModelSource>()));
            if (source.HostPath is { } hostPath && !hostPath.Path.StartsWith('/'))
                errors.Add(new("spec.model.source.hostPath.path", MessageOf<HostPathModelSource>()));
        }
        if (spec.Autoscaling is { } autoscaling && autoscaling.MinReplicas > autoscaling.MaxReplicas)
            errors.Add(new("spec.autoscaling.minReplicas", MessageOf<AutoscalingSpec>()));
        if (spec.Parallelism is { ExpertParallelSize: { } ranks, PodsPerReplica: > 0 and var pods } && spec.Runtime is { } runtime)
        {
            if (ranks % pods != 0 || runtime.GpusPerPod % (ranks / pods) != 0)
                errors.Add(new("spec.parallelism.expertParallelSize", MessageOf<DeepSeekModelSpec>()));
        }
    }

    private static string MessageOf<T>() => typeof(T).GetCustomAttribute<CelRuleAttribute>()!.Message;

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
        MinLengthAttribute m => $"must have at least {m.Length} characters",
        MaxLengthAttribute m => $"must have at most {m.Length} characters",
        AllowedValuesAttribute a => $"must be one of {string.Join(", ", a.Values)} (got {value})",
        _ => attribute.FormatErrorMessage("value"),
    };

    private static bool IsDns1035Label(string name) =>
        char.IsAsciiLetterLower(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && name[^1] != '-';
}
