using System.Diagnostics.Metrics;
using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Telemetry;

/// <summary>
/// The engine's instruments on the <c>DeepSeek.Runtime</c> meter. Instrument names are the documented
/// metric names (docs/engine.md, Metrics) without the suffixes OpenTelemetry's Prometheus exporter adds: <c>_total</c> on counters, the unit
/// (<c>_seconds</c>, <c>_ratio</c>) where the name lacks it. Every measurement carries the <c>model</c> tag.
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "DeepSeek.Runtime";

    /// <summary>The counter behind <c>deepseek_expert_tokens_total{layer,expert}</c> (an expert-parallel leader's rebalancer listens to it).</summary>
    public const string ExpertTokensInstrument = "deepseek_expert_tokens";

    /// <summary>Seconds, 1 ms to about 10 minutes: from a cached decode step to a long queue wait.</summary>
    public static IReadOnlyList<double> LatencyBuckets { get; } =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 320, 640];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly KeyValuePair<string, object?> _model;
    private readonly Gauge<long> _waiting;
    private readonly Gauge<long> _running;
    private readonly Gauge<double> _kvUsage;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generationTokens;
    private readonly Counter<long> _success;
    private readonly Counter<long> _failure;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;
    private readonly Histogram<double> _e2eLatency;
    private readonly Histogram<double> _queueTime;
    private readonly Counter<long> _prefixQueries;
    private readonly Counter<long> _prefixHits;
    private readonly Counter<long> _expertTokens;
    private readonly Gauge<double> _expertImbalance;
    private readonly Gauge<double> _modelLoad;

    /// <param name="model">The served model name, the <c>model</c> label of every series.</param>
    /// <param name="meterFactory">The host's factory (dependency injection); null creates a meter owned by this object.</param>
    public EngineMetrics(string model, IMeterFactory? meterFactory = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        _model = new("model", model);
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);

        _waiting = _meter.CreateGauge<long>("deepseek_requests_waiting", "{request}", "Requests admitted and waiting for a step (queue depth).");
        _running = _meter.CreateGauge<long>("deepseek_requests_running", "{request}", "Requests holding KV blocks.");
        _kvUsage = _meter.CreateGauge<double>("deepseek_kv_cache_usage_ratio", "1", "Fraction of KV-cache blocks referenced by requests.");
        _promptTokens = _meter.CreateCounter<long>("deepseek_prompt_tokens", "{token}", "Prompt tokens of finished requests.");
        _generationTokens = _meter.CreateCounter<long>("deepseek_generation_tokens", "{token}", "Generated tokens.");
        _success = _meter.CreateCounter<long>("deepseek_request_success", "{request}", "Requests finished normally, by finish reason.");
        _failure = _meter.CreateCounter<long>("deepseek_request_failure", "{request}", "Requests refused or failed, by reason.");
        _timeToFirstToken = Latency("deepseek_time_to_first_token", "From arrival to the first generated token.");
        _interTokenLatency = Latency("deepseek_inter_token_latency", "Between consecutive generated tokens of a request.");
        _e2eLatency = Latency("deepseek_e2e_request_latency", "From arrival to the last token.");
        _queueTime = Latency("deepseek_queue_time", "From arrival to the first scheduled step.");
        _prefixQueries = _meter.CreateCounter<long>("deepseek_prefix_cache_queries", "{token}", "Prompt tokens looked up in the prefix cache.");
        _prefixHits = _meter.CreateCounter<long>("deepseek_prefix_cache_hits", "{token}", "Prompt tokens served from the prefix cache.");
        _expertTokens = _meter.CreateCounter<long>(ExpertTokensInstrument, "{token}", "Tokens routed to each expert, per MoE layer.");
        _expertImbalance = _meter.CreateGauge<double>("deepseek_expert_load_imbalance_ratio", "1", "Max over mean of tokens per expert shard, per MoE layer.");
        _modelLoad = _meter.CreateGauge<double>("deepseek_model_load", "s", "Seconds the model took to load.");

        // Known label values start at 0, so rates and alerts see the series before the first event.
        foreach (var reason in new[] { FinishReason.Stop, FinishReason.Length }) _success.Add(0, _model, new("finish_reason", FinishReasonLabel(reason)));
        foreach (var reason in FailureReasons.All) _failure.Add(0, _model, new("reason", reason));
    }

    public void SetQueueState(int waiting, int running, double kvCacheUsageRatio)
    {
        _waiting.Record(waiting, _model);
        _running.Record(running, _model);
        _kvUsage.Record(kvCacheUsageRatio, _model);
    }

    // A request's own series carry the name it asked for: a LoRA adapter's (design §2.7), else the served model's.
    // <paramref name="model"/> null below is the served model.

    public void AddPromptTokens(long count, string? model = null) => _promptTokens.Add(count, Model(model));

    public void AddGenerationTokens(long count, string? model = null) => _generationTokens.Add(count, Model(model));

    public void RecordSuccess(FinishReason reason, string? model = null) =>
        _success.Add(1, Model(model), new("finish_reason", FinishReasonLabel(reason)));

    /// <param name="reason">One of <see cref="FailureReasons"/>.</param>
    /// <param name="model">The adapter the request named; null: the served model.</param>
    public void RecordFailure(string reason, string? model = null) => _failure.Add(1, Model(model), new("reason", reason));

    public void RecordTimeToFirstToken(TimeSpan elapsed, string? model = null) => _timeToFirstToken.Record(elapsed.TotalSeconds, Model(model));

    public void RecordInterTokenLatency(TimeSpan elapsed, string? model = null) => _interTokenLatency.Record(elapsed.TotalSeconds, Model(model));

    public void RecordEndToEndLatency(TimeSpan elapsed, string? model = null) => _e2eLatency.Record(elapsed.TotalSeconds, Model(model));

    public void RecordQueueTime(TimeSpan elapsed, string? model = null) => _queueTime.Record(elapsed.TotalSeconds, Model(model));

    private KeyValuePair<string, object?> Model(string? name) => name is null ? _model : new("model", name);

    public void AddPrefixCacheLookup(long queriedTokens, long hitTokens)
    {
        _prefixQueries.Add(queriedTokens, _model);
        _prefixHits.Add(hitTokens, _model);
    }

    /// <summary>Tokens routed to each expert of one MoE layer in one step (experts with none are skipped).</summary>
    public void RecordExpertTokens(int layer, ReadOnlySpan<long> tokensPerExpert)
    {
        var layerTag = new KeyValuePair<string, object?>("layer", layer.ToString());
        for (var expert = 0; expert < tokensPerExpert.Length; expert++)
            if (tokensPerExpert[expert] > 0)
                _expertTokens.Add(tokensPerExpert[expert], _model, layerTag, new("expert", expert.ToString()));
    }

    /// <summary>A MoE layer's imbalance, <c>ExpertLoad.ImbalanceRatio</c> over tokens per expert shard.</summary>
    public void SetExpertLoadImbalance(int layer, double ratio) =>
        _expertImbalance.Record(ratio, _model, new("layer", layer.ToString()));

    public void SetModelLoadTime(TimeSpan elapsed) => _modelLoad.Record(elapsed.TotalSeconds, _model);

    public static string FinishReasonLabel(FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        FinishReason.Cancelled => "cancelled",
        FinishReason.Error => "error",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, null),
    };

    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }

    private Histogram<double> Latency(string name, string description) =>
        _meter.CreateHistogram(name, "s", description, tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
}
