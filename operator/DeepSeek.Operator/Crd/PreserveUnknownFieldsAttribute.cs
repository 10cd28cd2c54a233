namespace DeepSeek.Operator.Crd;

/// <summary>
/// Emit this property as an opaque object (<c>x-kubernetes-preserve-unknown-fields</c>) instead of
/// its full schema: used for large Kubernetes types passed to pods unchanged (affinity), whose
/// validation the API server does when it admits the pods.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class PreserveUnknownFieldsAttribute : Attribute;
