namespace DeepSeek.Gateway.Configuration;

/// <summary>
/// The gateway's whole configuration, as <c>--config FILE</c> spells it (design §7): where to listen,
/// the model table (or <c>cluster:</c>, to discover it), the keys and the audit log. Read once at start; <see cref="Problems"/> names every
/// mistake at once, so a bad file is fixed in one edit, not one error per start.
/// </summary>
internal sealed class GatewayConfig
{
    /// <summary>Largest request body read to find its <c>model</c>; a larger one is refused with 413 before any runtime sees it.</summary>
    public const long DefaultMaxRequestBytes = 1024 * 1024;

    public ListenConfig Listen { get; set; } = new();

    public List<ModelConfig> Models { get; set; } = [];

    /// <summary>No keys: the gateway is open. Else every <c>/v1</c> call needs <c>Authorization: Bearer KEY</c>.</summary>
    public List<KeyConfig> Keys { get; set; } = [];

    public AuditConfig? Audit { get; set; }

    /// <summary>Discover the models (and read the keys) from the Kubernetes API server instead of <see cref="Models"/> (and <see cref="Keys"/>).</summary>
    public ClusterConfig? Cluster { get; set; }

    public long MaxRequestBytes { get; set; } = DefaultMaxRequestBytes;

    /// <summary>Every problem of the file, each naming its place (<c>models[0].variants[1].weight</c>); empty when valid.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Listen is null) problems.Add("listen: missing");
        else Listen.Check(problems);
        if (MaxRequestBytes <= 0) problems.Add($"maxRequestBytes: {MaxRequestBytes} must be positive");
        if (Cluster is not null)
        {
            Cluster.Check(problems);
            if (Models is { Count: > 0 }) problems.Add("models: leave it out with cluster: (the models are discovered)");
            if (Keys is { Count: > 0 } && Cluster.KeySecrets is { Count: > 0 }) problems.Add("keys: give keys here or in cluster.keySecrets, not both");
        }
        else if (Models is null || Models.Count == 0) problems.Add("models: at least one model is needed (or cluster: to discover them)");
        var modelNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < (Models?.Count ?? 0); i++)
        {
            var model = Models![i];
            if (model is null)
            {
                problems.Add($"models[{i}]: empty entry");
                continue;
            }
            model.Check($"models[{i}]", problems);
            if (!string.IsNullOrWhiteSpace(model.Name) && !modelNames.Add(model.Name)) problems.Add($"models[{i}].name: '{model.Name}' is listed twice");
        }
        KeyConfig.CheckList("keys", Keys, Cluster is null ? modelNames : null, problems);
        if (Audit is not null && string.IsNullOrWhiteSpace(Audit.Path)) problems.Add("audit.path: give a file path (or /dev/stdout), or leave audit out");
        return problems;
    }
}

internal sealed class ListenConfig
{
    public string Host { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 8080;

    internal void Check(List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(Host) || (Host != "localhost" && !System.Net.IPAddress.TryParse(Host, out _)))
            problems.Add($"listen.host: '{Host}' is not an IP address or localhost");
        if (Port is < 1 or > 65535) problems.Add($"listen.port: {Port} is not a port (1-65535)");
    }
}

internal sealed class AuditConfig
{
    /// <summary>A file appended to, one JSON line per request; <c>/dev/stdout</c> for the container log.</summary>
    public string Path { get; set; } = "";
}
