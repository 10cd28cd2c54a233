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

/// <summary>
/// The models the gateway serves, with one <see cref="EndpointState"/> per distinct URL. One table, two
/// sources: the configuration file's <c>models:</c> (set once), or the cluster's <c>DeepSeekModel</c>s and
/// their ready pods (<see cref="Replace"/> on every change). A replacement keeps what is live: an endpoint
/// still listed keeps its in-flight count and readiness, a model still listed keeps its cache entries.
/// </summary>
internal sealed class ModelTable
{
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private volatile Snapshot _current = new(new Dictionary<string, GatewayModel>(StringComparer.Ordinal), []);
    private TaskCompletionSource _changed = NewSignal();

    public ModelTable(TimeProvider time) => _time = time;

    public ModelTable(GatewayConfig config, TimeProvider time) : this(time)
    {
        ArgumentNullException.ThrowIfNull(config);
        Replace(config.Models);
    }

    public IReadOnlyList<EndpointState> Endpoints => _current.Endpoints;

    public IEnumerable<GatewayModel> Models => _current.Models.Values;

    public GatewayModel? Find(string name) => _current.Models.GetValueOrDefault(name);

    /// <summary>Completes at the next <see cref="Replace"/>: a held request looks at the table again then.</summary>
    public Task Changed
    {
        get { lock (_gate) return _changed.Task; }
    }

    /// <summary>The table becomes <paramref name="models"/> (valid: names unique, routing known) at once.</summary>
    public void Replace(IReadOnlyList<ModelConfig> models)
    {
        ArgumentNullException.ThrowIfNull(models);
        TaskCompletionSource changed;
        lock (_gate)
        {
            var previous = _current;
            var known = previous.Endpoints.ToDictionary(e => e.Url, StringComparer.OrdinalIgnoreCase);
            var endpoints = new Dictionary<string, EndpointState>(StringComparer.OrdinalIgnoreCase);
            EndpointState Endpoint(string url)
            {
                var key = url.TrimEnd('/');
                if (endpoints.TryGetValue(key, out var listed)) return listed;
                return endpoints[key] = known.GetValueOrDefault(key) ?? new EndpointState(key);
            }
            var table = models.ToDictionary(m => m.Name, m =>
            {
                // Validated before: the name parses.
                if (!RoutingPolicies.TryParse(m.Routing, out var routing)) throw new ArgumentException($"Unknown routing '{m.Routing}'.", nameof(models));
                var variants = m.Variants.Select(v => new GatewayVariant(v.Name, v.Weight, v.ServedName ?? m.Name, v.Endpoints.Select(Endpoint).ToList())).ToList();
                return new GatewayModel(m, routing, variants, CacheFor(previous.Models.GetValueOrDefault(m.Name), m.Cache));
            }, StringComparer.Ordinal);
            _current = new Snapshot(table, [.. endpoints.Values]);
            changed = _changed;
            _changed = NewSignal();
        }
        changed.TrySetResult();
    }

    /// <summary>The model's cache as it was when its settings are the same (entries outlive a new endpoint), else a new one.</summary>
    private ResponseCache? CacheFor(GatewayModel? before, CacheConfig? settings)
    {
        if (settings is null) return null;
        if (before?.Cache is { } kept && before.Config.Cache is { } old && old.TtlSeconds == settings.TtlSeconds && old.MaxEntries == settings.MaxEntries) return kept;
        return new ResponseCache(settings, _time);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed record Snapshot(Dictionary<string, GatewayModel> Models, IReadOnlyList<EndpointState> Endpoints);
}
