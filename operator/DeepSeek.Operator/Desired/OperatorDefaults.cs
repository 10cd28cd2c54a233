using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>Settings of the operator applied to models that leave them unset (from the run verb's flags).</summary>
public sealed record OperatorDefaults
{
    /// <summary>Runtime image for models without <c>spec.runtime.image</c>.</summary>
    public string? RuntimeImage { get; init; }

    /// <summary>Node selector for models without <c>spec.runtime.nodeSelector</c>.</summary>
    public IReadOnlyDictionary<string, string> NodeSelector { get; init; } = new Dictionary<string, string>();

    /// <summary>Tolerations for models without <c>spec.runtime.tolerations</c>.</summary>
    public IReadOnlyList<V1Toleration> Tolerations { get; init; } = [];
}
