using System.Diagnostics.Metrics;

namespace DeepSeek.Gateway.Telemetry;

/// <summary>
/// The gateway's instruments on the <c>DeepSeek.Gateway</c> meter. Names are design §7's without the
/// suffixes OpenTelemetry's Prometheus exporter adds (<c>_total</c> on counters, <c>_seconds</c> from the
/// unit), as the runtime's are: <c>deepseek_gateway_requests_total{model,variant,key,code}</c>,
/// <c>deepseek_gateway_request_duration_seconds</c>, <c>deepseek_gateway_cache_hits_total</c>,
/// <c>deepseek_gateway_rate_limited_total{key}</c>, <c>deepseek_gateway_upstream_errors_total</c>.
/// </summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = "DeepSeek.Gateway";

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _cacheHits;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _upstreamErrors;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _requests = meter.CreateCounter<long>("deepseek_gateway_requests", "{request}", "Requests answered, by model, variant, key id and HTTP status.");
        // Buckets for requests from a cache hit (milliseconds) to a long generation (minutes); OpenTelemetry's default ones are for milliseconds.
        _duration = meter.CreateHistogram("deepseek_gateway_request_duration", "s", "Seconds from a request's arrival to its response's end.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] });
        _cacheHits = meter.CreateCounter<long>("deepseek_gateway_cache_hits", "{request}", "Requests answered from the exact-response cache.");
        _rateLimited = meter.CreateCounter<long>("deepseek_gateway_rate_limited", "{request}", "Requests refused with 429 by a key's per-minute limits.");
        _upstreamErrors = meter.CreateCounter<long>("deepseek_gateway_upstream_errors", "{error}", "Forwarding failures: connection refused or reset, runtime not ready (503), timeout.");
    }

    /// <summary>One answered request; <paramref name="model"/> is the configured name, or <c>unknown</c> (a client's unknown name would make a label per typo).</summary>
    public void Request(string model, string variant, string key, int status, TimeSpan duration)
    {
        var code = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _requests.Add(1, new("model", model), new("variant", variant), new("key", key), new("code", code));
        _duration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("model", model));
    }

    public void CacheHit(string model) => _cacheHits.Add(1, new KeyValuePair<string, object?>("model", model));

    public void RateLimited(string key) => _rateLimited.Add(1, new KeyValuePair<string, object?>("key", key));

    public void UpstreamError(string model, string endpoint, string reason) =>
        _upstreamErrors.Add(1, new("model", model), new("endpoint", endpoint), new("reason", reason));
}
