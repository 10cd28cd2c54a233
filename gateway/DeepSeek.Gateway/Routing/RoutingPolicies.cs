namespace DeepSeek.Gateway.Routing;

/// <summary>How a request picks one endpoint of its variant.</summary>
internal enum RoutingPolicy
{
    /// <summary>Each endpoint in turn.</summary>
    RoundRobin,

    /// <summary>The endpoint with the fewest requests in flight through this gateway.</summary>
    LeastLoad,

    /// <summary>Affinity: one prompt prefix to one endpoint (its prefix cache stays warm), spilling when that one is busy.</summary>
    Prefix,
}

/// <summary>The policies' names as the configuration spells them.</summary>
internal static class RoutingPolicies
{
    public const string RoundRobin = "round-robin";
    public const string LeastLoad = "least-load";
    public const string Prefix = "prefix";

    public static IReadOnlyList<string> Names { get; } = [Prefix, LeastLoad, RoundRobin];

    public static bool TryParse(string? name, out RoutingPolicy policy)
    {
        (var known, policy) = name switch
        {
            RoundRobin => (true, RoutingPolicy.RoundRobin),
            LeastLoad => (true, RoutingPolicy.LeastLoad),
            Prefix => (true, RoutingPolicy.Prefix),
            _ => (false, RoutingPolicy.RoundRobin),
        };
        return known;
    }
}
