namespace DeepSeek.Gateway.Configuration;

/// <summary>
/// <c>cluster:</c>: the model table comes from the API server instead of <c>models:</c>. Every
/// <c>DeepSeekModel</c> of <see cref="Namespaces"/> is published under its served name, its ready serving
/// pods as endpoints; models sharing a served name are the variants of one, split by
/// <c>spec.gateway.weight</c>. Keys come from <see cref="KeySecrets"/>, reloaded when they change.
/// </summary>
internal sealed class ClusterConfig
{
    /// <summary>Namespaces whose models are published; empty: every namespace.</summary>
    public List<string> Namespaces { get; set; } = [];

    /// <summary>Secrets holding the keys (every data entry a YAML list in the shape of <c>keys:</c>); none: the gateway is open.</summary>
    public List<SecretName> KeySecrets { get; set; } = [];

    /// <summary>The settings of every discovered model (timeouts, hold, routing, cache).</summary>
    public ClusterModelSettings Models { get; set; } = new();

    /// <summary>A request for a model scaled to 0 replicas patches its scale subresource to 1 and is held (up to holdSeconds).</summary>
    public bool ScaleFromZero { get; set; } = true;

    /// <summary>Long enough for a small model's pod to start and load; a large checkpoint needs more (set <c>cluster.models.holdSeconds</c>).</summary>
    public const double DefaultHoldSeconds = 120;

    internal void Check(List<string> problems)
    {
        for (var i = 0; i < (Namespaces?.Count ?? 0); i++)
        {
            if (!IsDnsLabel(Namespaces![i])) problems.Add($"cluster.namespaces[{i}]: '{Namespaces[i]}' is not a namespace name");
            else if (Namespaces.IndexOf(Namespaces[i]) < i) problems.Add($"cluster.namespaces[{i}]: '{Namespaces[i]}' is listed twice");
        }
        var secrets = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < (KeySecrets?.Count ?? 0); i++)
        {
            var secret = KeySecrets![i];
            if (secret is null)
            {
                problems.Add($"cluster.keySecrets[{i}]: empty entry");
                continue;
            }
            if (!IsDnsLabel(secret.Namespace)) problems.Add($"cluster.keySecrets[{i}].namespace: '{secret.Namespace}' is not a namespace name");
            if (string.IsNullOrWhiteSpace(secret.Name) || secret.Name.Length > 253) problems.Add($"cluster.keySecrets[{i}].name: '{secret.Name}' is not a Secret name");
            if (!secrets.Add(secret.Namespace + "/" + secret.Name)) problems.Add($"cluster.keySecrets[{i}]: {secret.Namespace}/{secret.Name} is listed twice");
        }
        if (Models is null) problems.Add("cluster.models: empty; leave it out for the defaults");
        else Models.CheckSettings("cluster.models", problems);
    }

    private static bool IsDnsLabel(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 63 && name[0] != '-' && name[^1] != '-'
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');
}

/// <summary>A discovered model's settings: a model's defaults, but a hold long enough for a pod to start (scale from zero).</summary>
internal sealed class ClusterModelSettings : ModelSettings
{
    public ClusterModelSettings() => HoldSeconds = ClusterConfig.DefaultHoldSeconds;
}

/// <summary>A Secret by namespace and name.</summary>
internal sealed class SecretName
{
    public string Namespace { get; set; } = "";

    public string Name { get; set; } = "";

    public override string ToString() => Namespace + "/" + Name;
}
