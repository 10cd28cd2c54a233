using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Tests.Scheduling;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Configuration;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Engine.Tests.Core;

/// <summary>
/// The real engine client and core over <see cref="FakeKvModel"/> (no tensors), whose steps can be
/// made to throw; what the failure tests read back: streams, failure counts by reason, log records.
/// </summary>
internal sealed class FaultInjection : IDisposable
{
    public static readonly TimeSpan Patience = DeepSeek.Testing.TestTime.Budget(TimeSpan.FromMinutes(1));
    private const int BlockSize = 4;
    private readonly MeterListener _listener;

    private FaultInjection(string model)
    {
        Model = model;
        Metrics = new EngineMetrics(model);
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == EngineMetrics.MeterName && instrument.Name == "deepseek_request_failure") l.EnableMeasurementEvents(instrument);
            },
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var dictionary = tags.ToArray().ToDictionary(t => t.Key, t => t.Value);
            if (Equals(dictionary.GetValueOrDefault("model"), model))
                Failures.AddOrUpdate((string)dictionary["reason"]!, value, (_, total) => total + value);
        });
        _listener.Start();
    }

    public string Model { get; }

    public EngineMetrics Metrics { get; }

    public ConcurrentDictionary<string, long> Failures { get; } = new();

    public RecordingLogger Log { get; } = new();

    public FakeKvModel Runner { get; private set; } = null!;

    public InferenceEngine Engine { get; private set; } = null!;

    public static DeepSeekConfig Config { get; } = DeepSeekConfig.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "deepseek-v3-tiny"));

    /// <summary>Starts an engine whose runner is a <see cref="FakeKvModel"/> with <paramref name="fault"/> before each step.</summary>
    public static async Task<FaultInjection> StartAsync(string model, EngineOptions options, Func<DeepSeek.Engine.Scheduling.SchedulerStep, Exception?>? fault = null,
        Func<IReadOnlyList<int>, string>? decode = null)
    {
        var harness = new FaultInjection(model);
        var numBlocks = options.KvCacheBlocks ?? 64;
        harness.Runner = new FakeKvModel(numBlocks, BlockSize, Config.VocabSize, Config) { Fault = fault };
        harness.Engine = await InferenceEngine.StartAsync(options with { ServedModelName = model, BlockSize = BlockSize, KvCacheBlocks = numBlocks },
            () => harness.Runner, new DelegateTokenDecoder(decode ?? (ids => string.Concat(ids.Select(id => $"<{id}>")))),
            harness.Metrics, null, null, harness.Log);
        return harness;
    }

    /// <summary>Greedy tokens of <paramref name="prompt"/> under the fake model's rule: what a request that is not failed must get.</summary>
    public static int[] Reference(IReadOnlyList<int> prompt, int count)
    {
        var context = prompt.ToList();
        for (var i = 0; i < count; i++) context.Add(FakeKvModel.NextToken(context, Config.VocabSize));
        return [.. context.Skip(prompt.Count)];
    }

    public static SamplingParameters Greedy(int maxTokens) => new() { Temperature = 0f, MaxTokens = maxTokens, IgnoreEos = true };

    public static async Task<List<TokenEvent>> CollectAsync(GenerationHandle handle)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var events = new List<TokenEvent>();
        await foreach (var item in handle.Events.ReadAllAsync(timeout.Token)) events.Add(item);
        return events;
    }

    public static int[] Tokens(IEnumerable<TokenEvent> events) => [.. events.Where(e => e.TokenId is not null).Select(e => e.TokenId!.Value)];

    public long FailureCount(string reason) => Failures.GetValueOrDefault(reason);

    /// <summary>Polls a condition the engine thread makes true shortly after a stream ends, within <see cref="Patience"/>.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (condition()) return true;
            await Task.Delay(10);
        }
        return condition();
    }

    public void Dispose()
    {
        Engine?.Dispose();
        _listener.Dispose();
        Metrics.Dispose();
    }

    /// <summary>Keeps every log record: the tests check that a failure is logged with its cause.</summary>
    public sealed class RecordingLogger : ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> Records { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            Records.Enqueue((logLevel, formatter(state, exception), exception));
        }
    }
}
