using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using DeepSeek.Engine;
using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Api.Tests.Backend;

/// <summary>
/// A deterministic stand-in for the engine: a byte-level tokenizer (ids 0-255 are bytes, then a few
/// specials), generated tokens a pure function of prompt, seed and position (lowercase letters),
/// stop strings and stop ids honoured, a bounded queue, an optional per-token delay, and a record of
/// every cancellation it saw. It speaks the engine's types, as the real backend does; a prompt
/// holding <see cref="FailMarker"/> fails mid-stream as an engine fault would.
/// </summary>
public sealed class TestBackend : IInferenceBackend
{
    public const int Bos = 256, Eos = 257, SystemMarker = 258, UserMarker = 259, AssistantMarker = 260;
    public const int Vocab = 300, Context = 512, Dimensions = 8;
    /// <summary>A prompt token that makes the request fail after two tokens with <see cref="FailureCode"/>.</summary>
    public const int FailMarker = 299;
    public const string FailureCode = DeepSeek.Engine.Telemetry.FailureReasons.ModelStep;
    /// <summary>A prompt token that makes <see cref="Submit"/> throw as LibTorch does when the device is out of memory.</summary>
    public const int OutOfMemoryMarker = 298;
    /// <summary>A prompt token whose event stream faults after two tokens, as a LibTorch shape error escaping a step would.</summary>
    public const int ShapeFaultMarker = 297;
    /// <summary>What the injected faults say, stack-trace-like, so that a test sees whether it reaches a client.</summary>
    public const string InjectedFaultText = "injected-libtorch-fault";

    private readonly Lock _gate = new();
    private int _waiting, _running;

    public int MaxRunning { get; init; } = 64;
    public int MaxQueued { get; init; } = 64;
    public TimeSpan TokenDelay { get; init; }
    /// <summary>Completes the warm-up; tests that check "loading" hold it open.</summary>
    public TaskCompletionSource WarmUpGate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public ConcurrentQueue<string> Cancelled { get; } = new();
    public TaskCompletionSource<string> FirstCancellation { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ModelDescription Model => _model with { MaxRunningRequests = MaxRunning, MaxQueuedRequests = MaxQueued };

    private readonly ModelDescription _model = new()
    {
        ServedName = "deepseek-test",
        Architecture = "deepseek_v3",
        VocabSize = Vocab,
        MaxContextLength = Context,
        EmbeddingDimensions = Dimensions,
        NumLayers = 2,
        NumRoutedExperts = 4,
        ExpertsPerToken = 2,
        DType = "float32",
        Device = "cpu",
        ParameterCount = 1234,
        CreatedUnixSeconds = 1_700_000_000,
        MaxTokenBytes = 1,
        MaxRunningRequests = 64,
        MaxQueuedRequests = 64,
    };

    public Task WarmUpAsync(CancellationToken cancellationToken) => WarmUpGate.Task.WaitAsync(cancellationToken);

    public int[] Encode(string text, bool addSpecialTokens) =>
        [.. (addSpecialTokens ? new[] { Bos } : []), .. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    public string Decode(IReadOnlyList<int> tokenIds, bool skipSpecialTokens)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (var id in tokenIds)
        {
            if (id < 256) { bytes.Add((byte)id); continue; }
            text.Append(Encoding.UTF8.GetString([.. bytes]));
            bytes.Clear();
            if (!skipSpecialTokens) text.Append($"<special_{id}>");
        }
        return text.Append(Encoding.UTF8.GetString([.. bytes])).ToString();
    }

    public int[] ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatTool> tools)
    {
        var ids = new List<int> { Bos };
        foreach (var message in messages)
        {
            ids.Add(message.Role switch { "system" => SystemMarker, "user" => UserMarker, _ => AssistantMarker });
            ids.AddRange(Encode(message.Content, addSpecialTokens: false));
        }
        ids.Add(AssistantMarker);
        return [.. ids];
    }

    /// <summary>The token the backend generates at <paramref name="position"/>: what tests compare clients against.</summary>
    public static int TokenAt(IReadOnlyList<int> prompt, SamplingParameters sampling, int position)
    {
        var hash = 17L;
        foreach (var id in prompt) hash = (hash * 31 + id) % 1_000_003;
        if (sampling.Temperature > 0 && sampling.Seed is { } seed) hash = (hash + (long)(seed % 1_000_003)) % 1_000_003;
        return 'a' + (int)((hash + position * 7L) % 26);
    }

    public static string ExpectedText(IReadOnlyList<int> prompt, SamplingParameters sampling) =>
        new([.. Enumerable.Range(0, sampling.MaxTokens ?? Context).Select(i => (char)TokenAt(prompt, sampling, i))]);

    public GenerationHandle Submit(ValidatedRequest request, CancellationToken cancellationToken)
    {
        var (promptTokenIds, sampling) = (request.PromptTokenIds, request.Sampling);
        if (promptTokenIds.Contains(OutOfMemoryMarker))
            throw new OutOfMemoryException($"CUDA out of memory. Tried to allocate 2.00 GiB ({InjectedFaultText})\n   at TorchSharp.torch.CheckForErrors()\n   at DeepSeek.Engine.Execution.ModelRunner.Execute()");
        lock (_gate)
        {
            if (_running >= MaxRunning && _waiting >= MaxQueued) throw new EngineOverloadedException(MaxQueued);
            _waiting++;
        }
        var id = "test-" + Interlocked.Increment(ref _nextId);
        Submitted.Enqueue(sampling);
        var events = Channel.CreateUnbounded<TokenEvent>();
        _ = Task.Run(() => RunAsync(id, promptTokenIds, sampling, events.Writer, cancellationToken), CancellationToken.None);
        return new GenerationHandle(id, events.Reader);
    }

    private long _nextId;

    /// <summary>Every sampling the faces submitted, in order.</summary>
    public ConcurrentQueue<SamplingParameters> Submitted { get; } = new();

    private async Task RunAsync(string requestId, IReadOnlyList<int> prompt, SamplingParameters sampling, ChannelWriter<TokenEvent> events, CancellationToken cancellationToken)
    {
        var generated = 0;
        var reason = FinishReason.Length;
        var text = new StringBuilder();
        var emitted = 0;
        var holdBack = sampling.Stop.Count == 0 ? 0 : sampling.Stop.Max(s => s.Length) - 1;
        var admitted = false;
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    if (_running < MaxRunning) { _waiting--; _running++; admitted = true; break; }
                }
                await Task.Delay(10, cancellationToken);
            }
            for (; generated < (sampling.MaxTokens ?? Context); generated++)
            {
                if (TokenDelay > TimeSpan.Zero) await Task.Delay(TokenDelay, cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                if (generated == 2 && prompt.Contains(ShapeFaultMarker))
                {
                    events.TryComplete(new System.Runtime.InteropServices.ExternalException(
                        $"shape '[2, -1, 16]' is invalid for input of size 40 ({InjectedFaultText})\nException raised from infer_size_impl at aten/src/ATen/InferSize.h:89\n   at TorchSharp.torch.Tensor.view(Int64[] shape)"));
                    return;
                }
                if (generated == 2 && prompt.Contains(FailMarker))
                {
                    reason = FinishReason.Error;
                    break;
                }
                var token = TokenAt(prompt, sampling, generated);
                if (generated >= sampling.MinTokens && sampling.StopTokenIds.Contains(token)) { reason = FinishReason.Stop; break; }
                text.Append((char)token);
                var full = text.ToString();
                var stopAt = generated + 1 >= sampling.MinTokens
                    ? sampling.Stop.Select(s => full.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min()
                    : -1;
                if (stopAt >= 0)
                {
                    text.Length = stopAt;
                    generated++;
                    reason = FinishReason.Stop;
                    break;
                }
                var safe = Math.Max(emitted, full.Length - holdBack);
                var delta = full[emitted..safe];
                emitted = safe;
                var top = Enumerable.Range(0, sampling.Logprobs ?? 0).Select(k => new TokenLogprob(k == 0 ? token : 'a' + (token - 'a' + k) % 26, Logprob(generated) - k * 0.5f)).ToList();
                events.TryWrite(new TokenEvent
                {
                    TokenId = token,
                    TextDelta = delta,
                    Logprobs = sampling.Logprobs is null ? null : new SampledLogprobs(new TokenLogprob(token, Logprob(generated)), 1, top),
                });
            }
        }
        catch (OperationCanceledException)
        {
            reason = FinishReason.Cancelled;
            Cancelled.Enqueue(requestId);
            FirstCancellation.TrySetResult(requestId);
        }
        finally
        {
            lock (_gate)
            {
                if (admitted) _running--;
                else _waiting--;
            }
        }
        var rest = emitted <= text.Length ? text.ToString(emitted, text.Length - emitted) : "";
        events.TryWrite(reason == FinishReason.Error
            ? new TokenEvent
            {
                FinishReason = reason,
                Usage = new UsageInfo(prompt.Count, generated, 0),
                ErrorMessage = "The model step failed: injected fault.",
                FailureReason = FailureCode,
            }
            : new TokenEvent { TextDelta = rest, FinishReason = reason, Usage = new UsageInfo(prompt.Count, generated, 0) });
        events.TryComplete();
    }

    private static float Logprob(int position) => -0.25f * (1 + position % 3);

    public EngineLoad GetLoad()
    {
        lock (_gate) return new EngineLoad(_waiting, _running, 0, 0, Draining: false);
    }

    /// <summary>Checked by the engine's rules, as the engine checks its inputs.</summary>
    public Task<float[][]> EmbedAsync(IReadOnlyList<IReadOnlyList<int>> inputs, CancellationToken cancellationToken)
    {
        Model.Validator.CheckEmbeddingInputs(inputs);
        return Task.FromResult(inputs.Select(Embed).ToArray());
    }

    /// <summary>A deterministic unit vector per input, so tests can recompute it.</summary>
    public static float[] Embed(IReadOnlyList<int> ids)
    {
        var vector = new float[Dimensions];
        foreach (var id in ids)
            for (var k = 0; k < Dimensions; k++) vector[k] += MathF.Sin(id * (k + 1));
        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        return norm == 0 ? vector : [.. vector.Select(v => v / norm)];
    }
}
