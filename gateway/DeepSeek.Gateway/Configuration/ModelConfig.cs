using DeepSeek.Gateway.Routing;

namespace DeepSeek.Gateway.Configuration;

/// <summary>
/// How one public model's requests are handled: how long they may take, how long to hold them for a ready
/// endpoint, how to pick among its endpoints, and its cache. A model of the file carries them itself; in a
/// cluster (<c>cluster.models</c>) they are every discovered model's.
/// </summary>
internal class ModelSettings
{
    /// <summary>Longest silence from the upstream (no response byte) before the request ends with 504.</summary>
    public double TimeoutSeconds { get; set; } = 60;

    /// <summary>With no ready endpoint, how long a request waits for one (polling readiness) before 503. 0: refuse at once.</summary>
    public double HoldSeconds { get; set; }

    /// <summary><c>prefix</c>, <c>least-load</c> or <c>round-robin</c>.</summary>
    public string Routing { get; set; } = RoutingPolicies.LeastLoad;

    /// <summary>
    /// For <c>prefix</c>: an endpoint whose in-flight count is at this or above is passed over for the least
    /// loaded one (affinity is worth a warm prefix cache, not a queue).
    /// </summary>
    public int PrefixSpillInFlight { get; set; } = 8;

    public CacheConfig? Cache { get; set; }

    internal void CheckSettings(string at, List<string> problems)
    {
        if (!(TimeoutSeconds > 0) || double.IsInfinity(TimeoutSeconds)) problems.Add($"{at}.timeoutSeconds: {TimeoutSeconds} must be positive");
        if (!(HoldSeconds >= 0) || double.IsInfinity(HoldSeconds)) problems.Add($"{at}.holdSeconds: {HoldSeconds} must be 0 or more");
        if (!RoutingPolicies.TryParse(Routing, out _)) problems.Add($"{at}.routing: '{Routing}' is not one of {string.Join(", ", RoutingPolicies.Names)}");
        if (PrefixSpillInFlight < 1) problems.Add($"{at}.prefixSpillInFlight: {PrefixSpillInFlight} must be at least 1");
        Cache?.Check($"{at}.cache", problems);
    }

    /// <summary>These settings on a model of the given name and variants (a discovered model takes <c>cluster.models</c>'s).</summary>
    internal ModelConfig For(string name, List<VariantConfig> variants) => new()
    {
        Name = name,
        TimeoutSeconds = TimeoutSeconds,
        HoldSeconds = HoldSeconds,
        Routing = Routing,
        PrefixSpillInFlight = PrefixSpillInFlight,
        Cache = Cache,
        Variants = variants,
    };
}

/// <summary>One public model name: its settings and its weighted variants.</summary>
internal sealed class ModelConfig : ModelSettings
{
    /// <summary>The <c>model</c> clients send.</summary>
    public string Name { get; set; } = "";

    public List<VariantConfig> Variants { get; set; } = [];

    internal void Check(string at, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(Name)) problems.Add($"{at}.name: missing");
        CheckSettings(at, problems);
        if (Variants is null || Variants.Count == 0)
        {
            problems.Add($"{at}.variants: at least one variant is needed");
            return;
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Variants.Count; i++)
        {
            var variant = Variants[i];
            if (variant is null)
            {
                problems.Add($"{at}.variants[{i}]: empty entry");
                continue;
            }
            variant.Check($"{at}.variants[{i}]", problems);
            if (!string.IsNullOrWhiteSpace(variant.Name) && !names.Add(variant.Name)) problems.Add($"{at}.variants[{i}].name: '{variant.Name}' is listed twice");
        }
        if (Variants.Where(v => v is not null).Sum(v => Math.Max(0, v.Weight)) <= 0) problems.Add($"{at}.variants: the weights add up to 0; give at least one a positive weight");
    }
}

/// <summary>Exact responses of deterministic requests, kept <see cref="TtlSeconds"/>, at most <see cref="MaxEntries"/>.</summary>
internal sealed class CacheConfig
{
    public double TtlSeconds { get; set; } = 300;

    public int MaxEntries { get; set; } = 10_000;

    internal void Check(string at, List<string> problems)
    {
        if (!(TtlSeconds > 0) || double.IsInfinity(TtlSeconds)) problems.Add($"{at}.ttlSeconds: {TtlSeconds} must be positive");
        if (MaxEntries < 1) problems.Add($"{at}.maxEntries: {MaxEntries} must be at least 1");
    }
}

/// <summary>One arm of an A/B split: its share of requests and the runtime replicas that serve it.</summary>
internal sealed class VariantConfig
{
    public string Name { get; set; } = "";

    public int Weight { get; set; } = 1;

    /// <summary>Base URLs (<c>http://host:port</c>) of runtime replicas.</summary>
    public List<string> Endpoints { get; set; } = [];

    /// <summary>The model name this variant's runtimes serve, written into the forwarded body; default the public name.</summary>
    public string? ServedName { get; set; }

    internal void Check(string at, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(Name)) problems.Add($"{at}.name: missing");
        if (Weight < 0) problems.Add($"{at}.weight: {Weight} must be 0 or more");
        if (ServedName is not null && string.IsNullOrWhiteSpace(ServedName)) problems.Add($"{at}.servedName: empty; leave it out to forward the public name");
        if (Endpoints is null || Endpoints.Count == 0)
        {
            problems.Add($"{at}.endpoints: at least one endpoint is needed");
            return;
        }
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < Endpoints.Count; i++)
        {
            var endpoint = Endpoints[i];
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
                || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
                problems.Add($"{at}.endpoints[{i}]: '{endpoint}' is not a base URL like http://10.0.0.5:8000 (http or https, no path, query or credentials)");
            else if (!seen.Add(uri.GetLeftPart(UriPartial.Authority)))
                problems.Add($"{at}.endpoints[{i}]: '{endpoint}' is listed twice");
        }
    }
}
