namespace DeepSeek.Operator.Desired;

/// <summary>Names of the objects derived from a model's name.</summary>
public static class ObjectNames
{
    public static string Service(string model) => model;
    public static string Deployment(string model) => model;
    public static string DisruptionBudget(string model) => model;
    public static string RuntimeSettings(string model) => model + "-runtime";

    /// <summary>
    /// The Secret holding the token the ranks of the model's groups present to each other. Not
    /// <c>-group-token</c>: that is the name earlier samples had users create by hand, and an object
    /// the operator does not own under its name would block the create.
    /// </summary>
    public static string GroupToken(string model) => model + "-ep-group-token";

    /// <summary>The NetworkPolicy that keeps the expert port to the model's own pods.</summary>
    public static string ExpertNetworkPolicy(string model) => model + "-experts";

    /// <summary>Replica group k: its StatefulSet and the headless Service that gives its pods stable DNS names.</summary>
    public static string Group(string model, int group) => $"{model}-g{group}";

    public static string GroupLabel(int group) => $"g{group}";
}
