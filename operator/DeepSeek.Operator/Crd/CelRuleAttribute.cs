namespace DeepSeek.Operator.Crd;

/// <summary>
/// A cross-field rule of the CRD schema (<c>x-kubernetes-validations</c>), evaluated by the API
/// server at admission. The same rule is enforced in code by <c>ModelValidator</c>, whose test
/// checks both agree on the samples and on the invalid cases.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property, AllowMultiple = true)]
public sealed class CelRuleAttribute(string rule, string message) : Attribute
{
    public string Rule { get; } = rule;
    public string Message { get; } = message;

    /// <summary>The field the rule blames, relative to the object the rule sits on (e.g. <c>.path</c>).</summary>
    public string? FieldPath { get; init; }
}
