using DeepSeek.Gateway.Caching;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Routing;

namespace DeepSeek.Gateway.Upstream;

/// <summary>A variant at run time: its weight, the name its runtimes serve, and its endpoints' live state.</summary>
internal sealed record GatewayVariant(string Name, int Weight, string ServedName, IReadOnlyList<EndpointState> Endpoints);

/// <summary>A public model at run time: its settings, routing policy, variants and cache.</summary>
internal sealed record GatewayModel(ModelConfig Config, RoutingPolicy Routing, IReadOnlyList<GatewayVariant> Variants, ResponseCache? Cache)
{
    public string Name => Config.Name;

    public IEnumerable<EndpointState> Endpoints => Variants.SelectMany(v => v.Endpoints).Distinct();
}

/// <summary>The configuration's models, with one <see cref="EndpointState"/> per distinct URL.</summary>
internal sealed class ModelTable
{
    private readonly Dictionary<string, GatewayModel> _models;

    public ModelTable(GatewayConfig config, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(config);
        var endpoints = new Dictionary<string, EndpointState>(StringComparer.OrdinalIgnoreCase);
        EndpointState Endpoint(string url) =>
            endpoints.TryGetValue(url.TrimEnd('/'), out var known) ? known : endpoints[url.TrimEnd('/')] = new EndpointState(url);
        _models = config.Models.ToDictionary(m => m.Name, m =>
        {
            // Validated before: the name parses.
            if (!RoutingPolicies.TryParse(m.Routing, out var routing)) throw new ArgumentException($"Unknown routing '{m.Routing}'.", nameof(config));
            var variants = m.Variants.Select(v => new GatewayVariant(v.Name, v.Weight, v.ServedName ?? m.Name, v.Endpoints.Select(Endpoint).ToList())).ToList();
            return new GatewayModel(m, routing, variants, m.Cache is { } cache ? new ResponseCache(cache, time) : null);
        }, StringComparer.Ordinal);
        Endpoints = endpoints.Values.ToList();
    }

    public IReadOnlyList<EndpointState> Endpoints { get; }

    public IEnumerable<GatewayModel> Models => _models.Values;

    public GatewayModel? Find(string name) => _models.GetValueOrDefault(name);
}
