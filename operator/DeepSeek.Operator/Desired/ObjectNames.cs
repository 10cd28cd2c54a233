namespace DeepSeek.Operator.Desired;

/// <summary>Names of the objects derived from a model's name.</summary>
public static class ObjectNames
{
    public static string Service(string model) => model;
    public static string Deployment(string model) => model;
    public static string DisruptionBudget(string model) => model;
    public static string RuntimeSettings(string model) => model + "-runtime";

    /// <summary>Replica group k: its StatefulSet and the headless Service that gives its pods stable DNS names.</summary>
    public static string Group(string model, int group) => $"{model}-g{group}";

    public static string GroupLabel(int group) => $"g{group}";
}
