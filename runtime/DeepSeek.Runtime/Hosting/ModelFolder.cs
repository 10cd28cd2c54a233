using System.Text;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Quantization;
using DeepSeek.Model.Tokenization;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// A checkpoint folder opened once: config.json (parsed, and its bytes, which the group's fingerprint
/// hashes), tokenizer.json (null without one: token ids only, empty text), the dtype and weight format
/// it loads in, and when config.json was written (the model's "created" time in the OpenAI API).
/// Everything that serves or shards the model reads these instead of the folder.
/// </summary>
public sealed record ModelFolder(string Directory, ReadOnlyMemory<byte> ConfigJson, DeepSeekConfig Config, BpeTokenizer? Tokenizer,
    ScalarType DType, WeightQuantization Quantization, DateTimeOffset Created)
{
    /// <exception cref="ConfigException">No config.json, or one this runtime cannot run.</exception>
    /// <exception cref="ArgumentException"><paramref name="quantization"/> cannot run with <paramref name="dtype"/>.</exception>
    public static ModelFolder Open(string directory, ScalarType dtype, WeightQuantization quantization)
    {
        ArgumentNullException.ThrowIfNull(quantization);
        quantization.CheckDType(dtype);
        var config = Path.Combine(directory, "config.json");
        if (!File.Exists(config)) throw new ConfigException($"--model {directory} has no config.json; give a Hugging Face-layout model folder.");
        var json = File.ReadAllBytes(config);
        var tokenizer = Path.Combine(directory, "tokenizer.json");
        return new(directory, json, DeepSeekConfig.Parse(Encoding.UTF8.GetString(json)), File.Exists(tokenizer) ? BpeTokenizer.Load(tokenizer) : null,
            dtype, quantization, File.GetLastWriteTimeUtc(config));
    }

    /// <summary>Builds the model, applies <paramref name="passes"/> (the expert-parallel shard), materialises it on <paramref name="device"/> and quantises it as <see cref="Quantization"/> says.</summary>
    public DeepSeekForCausalLM Load(Device device, Action<DeepSeekForCausalLM>? passes = null, Action<string>? log = null)
    {
        var (beforeLoad, afterLoad) = Fp8Residency.Passes(Quantization, Directory, Config);
        return DeepSeekForCausalLM.Load(Directory, DType, device, passes + beforeLoad, Int4Quantization.Pass(Quantization, DType, device, log) ?? afterLoad, log, config: Config);
    }
}
