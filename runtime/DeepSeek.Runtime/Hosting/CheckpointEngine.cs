using DeepSeek.Engine;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Engine.Text;
using DeepSeek.Model.Devices;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Cli;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// The engine over a checkpoint folder, as <c>serve</c> and <c>generate</c> start it: the model is
/// loaded on the engine thread, and text is decoded with the folder's tokenizer (special tokens skipped).
/// </summary>
public static class CheckpointEngine
{
    /// <summary>The folder's tokenizer.json, or null when it has none (token ids only, empty text).</summary>
    public static BpeTokenizer? LoadTokenizer(string modelDirectory)
    {
        var path = Path.Combine(modelDirectory, "tokenizer.json");
        return File.Exists(path) ? BpeTokenizer.Load(path) : null;
    }

    public static Task<InferenceEngine> StartAsync(string modelDirectory, string dtype, EngineOptions options, BpeTokenizer? tokenizer, EngineMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        var scalar = ModelOptions.ParseDType(dtype);
        return InferenceEngine.StartAsync(options,
            () => DeepSeekForCausalLM.Load(modelDirectory, scalar, TorchRuntime.Resolve(options.Device)),
            new DelegateTokenDecoder(ids => tokenizer?.Decode(ids, skipSpecialTokens: true) ?? ""),
            metrics);
    }
}
