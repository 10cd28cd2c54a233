using DeepSeek.Engine.Execution;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tokenization;
using static TorchSharp.torch;

namespace DeepSeek.Engine.IntegrationTests.Support;

/// <summary>Starts engines on the reference checkpoints (float64 on CPU: exact) and collects request streams with bounded waits.</summary>
public static class EngineHarness
{
    public static readonly TimeSpan Patience = DeepSeek.Testing.TestTime.Budget(TimeSpan.FromMinutes(2));

    public static Task<InferenceEngine> StartAsync(string checkpoint, EngineOptions options, EngineMetrics? metrics = null, Action<StepTiming>? onStep = null)
    {
        var directory = ReferenceCheckpoints.Dir(checkpoint);
        return InferenceEngine.StartAsync(options, () => LoadModel(checkpoint), Decoder(checkpoint), metrics ?? new EngineMetrics(options.ServedModelName), onStep: onStep);
    }

    public static DeepSeekForCausalLM LoadModel(string checkpoint) => DeepSeekForCausalLM.Load(ReferenceCheckpoints.Dir(checkpoint), ScalarType.Float64, CPU);

    public static DelegateTokenDecoder Decoder(string checkpoint)
    {
        var tokenizer = BpeTokenizer.Load(Path.Combine(ReferenceCheckpoints.Dir(checkpoint), "tokenizer.json"));
        return new DelegateTokenDecoder(ids => tokenizer.Decode(ids));
    }

    public static SamplingParameters Greedy(int maxTokens) => new() { Temperature = 0f, MaxTokens = maxTokens, IgnoreEos = true };

    /// <summary>Every event of a stream until it completes; fails the test rather than waiting forever.</summary>
    public static async Task<List<TokenEvent>> CollectAsync(GenerationHandle handle)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var events = new List<TokenEvent>();
        await foreach (var item in handle.Events.ReadAllAsync(timeout.Token)) events.Add(item);
        return events;
    }

    public static int[] Tokens(IEnumerable<TokenEvent> events) => events.Where(e => e.TokenId is not null).Select(e => e.TokenId!.Value).ToArray();

    /// <summary>Polls a condition the engine thread makes true shortly after a stream ends (its load snapshot), within <see cref="Patience"/>.</summary>
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
}
