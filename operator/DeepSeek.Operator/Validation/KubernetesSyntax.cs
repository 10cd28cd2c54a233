namespace DeepSeek.Operator.Validation;

/// <summary>
/// Syntax the API server enforces on values a DeepSeekModel passes to its pods, written once for the CRD
/// schema and for <see cref="ModelValidator"/>. Patterns avoid backslashes so that they can sit inside a
/// CEL string literal unchanged.
/// </summary>
public static class KubernetesSyntax
{
    /// <summary>
    /// A label key: an optional DNS-subdomain prefix and '/', then a name of 1 to 63 characters of
    /// [-A-Za-z0-9_.] that starts and ends alphanumeric (kubernetes.io, "Labels and Selectors", syntax and character set).
    /// </summary>
    public const string LabelKeyPattern = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";

    /// <summary>A label value: empty, or up to 63 characters of [-A-Za-z0-9_.] that start and end alphanumeric.</summary>
    public const string LabelValuePattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

    public const int LabelValueMaxLength = 63;

    /// <summary>
    /// A resource quantity in its string form (kubernetes.io, "Resource Management for Pods and
    /// Containers", meaning of memory/CPU): a signed decimal with a binary (Ki..Ei) or decimal (n..E)
    /// suffix or an exponent. The same pattern Kubernetes publishes in its OpenAPI for Quantity.
    /// </summary>
    public const string QuantityPattern = @"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

    /// <summary>Toleration operators; empty means Equal (kubernetes.io, "Taints and Tolerations").</summary>
    public static readonly string[] TolerationOperators = ["", "Exists", "Equal"];

    /// <summary>Taint effects; empty tolerates every effect.</summary>
    public static readonly string[] TaintEffects = ["", "NoSchedule", "PreferNoSchedule", "NoExecute"];
}
