using System.Reflection;
using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Validation;
using k8s.Models;

namespace DeepSeek.Operator.Crd;

/// <summary>
/// Constraints the API server enforces on Kubernetes types a DeepSeekModel embeds (env, tolerations,
/// node selectors, quantities), which KubernetesClient's models do not carry: written into the CRD so
/// that a mistake is refused at admission instead of when the operator creates the workload.
/// </summary>
public static class EmbeddedFieldRules
{
    public static void Apply(PropertyInfo property, JsonObject schema)
    {
        var owner = property.DeclaringType;
        switch (property.Name)
        {
            case nameof(V1EnvVar.Name) when owner == typeof(V1EnvVar):
                schema["minLength"] = 1;
                break;
            case nameof(V1Toleration.OperatorProperty) when owner == typeof(V1Toleration):
                schema["enum"] = Strings(KubernetesSyntax.TolerationOperators);
                break;
            case nameof(V1Toleration.Effect) when owner == typeof(V1Toleration):
                schema["enum"] = Strings(KubernetesSyntax.TaintEffects);
                break;
            case nameof(RuntimeSpec.NodeSelector) when owner == typeof(RuntimeSpec):
                var values = schema["additionalProperties"]!.AsObject();
                values["maxLength"] = KubernetesSyntax.LabelValueMaxLength;
                values["pattern"] = KubernetesSyntax.LabelValuePattern;
                break;
        }
    }

    /// <summary>Properties of an embedded type that must be present.</summary>
    public static IReadOnlyList<string> Required(Type type) => type == typeof(V1EnvVar) ? ["name"] : [];

    private static JsonArray Strings(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
}
