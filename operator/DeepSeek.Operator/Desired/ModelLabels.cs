using DeepSeek.Operator.Api.V1Alpha1;

namespace DeepSeek.Operator.Desired;

/// <summary>Labels and annotations the operator puts on what it creates.</summary>
public static class ModelLabels
{
    public const string Name = "app.kubernetes.io/name";
    public const string Instance = "app.kubernetes.io/instance";
    public const string ManagedBy = "app.kubernetes.io/managed-by";
    public const string Component = "app.kubernetes.io/component";
    public const string Group = V1Alpha1DeepSeekModel.Group + "/replica-group";
    /// <summary>Set by the StatefulSet controller on each pod (Kubernetes ≥ 1.28): the pod's ordinal, i.e. its rank.</summary>
    public const string PodIndex = "apps.kubernetes.io/pod-index";
    /// <summary>Hash of the desired object; an existing object is updated only when it differs.</summary>
    public const string SpecHash = V1Alpha1DeepSeekModel.Group + "/spec-hash";
    /// <summary>Hash of the runtime settings on the pod template, so a settings change rolls the pods.</summary>
    public const string ConfigHash = V1Alpha1DeepSeekModel.Group + "/config-hash";

    public const string AppName = "deepseek-runtime";
    public const string OperatorName = "deepseek-operator";

    /// <summary>Selects everything the operator manages, for its watches.</summary>
    public const string ManagedSelector = ManagedBy + "=" + OperatorName;

    public static Dictionary<string, string> For(string model) => new()
    {
        [Name] = AppName,
        [Instance] = model,
        [ManagedBy] = OperatorName,
        [Component] = "inference",
    };

    /// <summary>The pods of one model: stable across spec changes, so selectors never change.</summary>
    public static Dictionary<string, string> Selector(string model) => new()
    {
        [Name] = AppName,
        [Instance] = model,
    };

    public static string SelectorString(string model) => $"{Name}={AppName},{Instance}={model}";
}
