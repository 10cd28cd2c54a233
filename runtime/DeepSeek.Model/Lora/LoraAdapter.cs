using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using DeepSeek.Model.Checkpoints;

namespace DeepSeek.Model.Lora;

/// <summary>
/// A LoRA adapter read from a PEFT folder (<c>adapter_config.json</c>, <c>adapter_model.safetensors</c>)
/// and checked against the model it is served on: per adapted projection <c>W</c> its <c>A</c> <c>[r, in]</c>
/// and <c>B</c> <c>[out, r]</c>, so that requests naming it get the tokens of <c>W + scale·B·A</c> with
/// <c>scale = lora_alpha / r</c> (<c>lora_alpha / √r</c> with <c>use_rslora</c>). The weights are kept as
/// float32 arrays in host memory (no tensor: any thread may load one); <see cref="LoraSlots"/> copies them
/// to the device when a step needs them. What is not supported is refused with one line naming it:
/// DoRA, biases, saved whole modules, per-module rank or alpha patterns, modules the model does not have
/// or that take no adapter here, a rank above <c>--max-lora-rank</c>.
/// </summary>
public sealed class LoraAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    private const string Prefix = "base_model.model.";
    private static long _nextId;

    private LoraAdapter(string name, string directory, int rank, double alpha, bool useRslora, IReadOnlyDictionary<string, LoraWeights> modules)
    {
        Name = name;
        Directory = directory;
        Rank = rank;
        Alpha = alpha;
        UseRslora = useRslora;
        Modules = modules;
        Id = Interlocked.Increment(ref _nextId);
    }

    /// <summary>What requests name it by (their <c>model</c>).</summary>
    public string Name { get; }

    public string Directory { get; }

    public int Rank { get; }

    public double Alpha { get; }

    public bool UseRslora { get; }

    /// <summary><c>alpha / r</c>, or <c>alpha / √r</c> with rsLoRA.</summary>
    public double Scale => UseRslora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Unique to this load in this process: an adapter unloaded and loaded again under the same name is another adapter (its prefix-cache blocks are not the old one's).</summary>
    public long Id { get; }

    /// <summary>Adapted projection (checkpoint module name) → its A and B.</summary>
    public IReadOnlyDictionary<string, LoraWeights> Modules { get; }

    /// <summary>
    /// An adapter from weights in memory (a benchmark's random adapters, tests of scheduling), checked as a
    /// folder's would be against <paramref name="targets"/> and <paramref name="maxRank"/>.
    /// </summary>
    /// <exception cref="LoraAdapterException">A module the model cannot adapt, or weights of the wrong shape or rank.</exception>
    public static LoraAdapter FromWeights(string name, double alpha, bool useRslora, IReadOnlyDictionary<string, LoraWeights> modules, LoraTargets targets, int maxRank)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(modules);
        ArgumentNullException.ThrowIfNull(targets);
        if (modules.Count == 0) throw new LoraAdapterException($"LoRA adapter '{name}': it adapts no projection.");
        var rank = modules.Values.First().Rank;
        if (rank > maxRank) throw new LoraAdapterException($"LoRA adapter '{name}': r is {rank}, above --max-lora-rank {maxRank}.");
        foreach (var (module, weights) in modules)
        {
            if (!targets.Supported.TryGetValue(module, out var shape))
                throw new LoraAdapterException($"LoRA adapter '{name}': '{module}' is not a projection this model adapts.");
            if (weights.Rank != rank || weights.In != shape.In || weights.Out != shape.Out || weights.A.Length != (long)rank * shape.In || weights.B.Length != (long)rank * shape.Out)
                throw new LoraAdapterException($"LoRA adapter '{name}': '{module}' must be rank {rank} with A [{rank}, {shape.In}] and B [{shape.Out}, {rank}].");
        }
        return new LoraAdapter(name, "", rank, alpha, useRslora, modules);
    }

    /// <summary>Reads and checks the adapter in <paramref name="directory"/>.</summary>
    /// <exception cref="LoraAdapterException">The folder is not a PEFT LoRA adapter this model can serve; the message says why in one line.</exception>
    public static LoraAdapter Load(string name, string directory, LoraTargets targets, int maxRank)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(targets);
        string Refuse(string why) => throw new LoraAdapterException($"LoRA adapter '{name}' ({directory}): {why}");
        if (string.IsNullOrWhiteSpace(directory) || !System.IO.Directory.Exists(directory)) Refuse("the folder does not exist.");
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) Refuse($"{ConfigFile} is missing; a PEFT adapter folder holds {ConfigFile} and {WeightsFile}.");
        if (!File.Exists(weightsPath)) Refuse($"{WeightsFile} is missing (adapter_model.bin, the pickle format, is not read).");

        JsonElement config;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(configPath));
            config = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new LoraAdapterException($"LoRA adapter '{name}' ({directory}): {ConfigFile} is not JSON: {e.Message}", e);
        }
        if (config.ValueKind != JsonValueKind.Object) Refuse($"{ConfigFile} is not a JSON object.");
        if (Text(config, "peft_type") is { } type && !type.Equals("LORA", StringComparison.OrdinalIgnoreCase))
            Refuse($"peft_type is {type}; only LORA adapters are served.");
        if (Flag(config, "use_dora")) Refuse("use_dora is true; DoRA adapters are not supported.");
        if (Text(config, "bias") is { } bias && bias != "none") Refuse($"bias is '{bias}'; only adapters without biases (\"bias\": \"none\") are supported.");
        if (Flag(config, "lora_bias")) Refuse("lora_bias is true; only adapters without biases are supported.");
        if (Flag(config, "fan_in_fan_out")) Refuse("fan_in_fan_out is true; DeepSeek's projections are not transposed (Conv1D) layers.");
        if (NonEmpty(config, "modules_to_save")) Refuse("modules_to_save is set; adapters that replace whole modules are not supported.");
        foreach (var pattern in new[] { "rank_pattern", "alpha_pattern" })
            if (NonEmpty(config, pattern)) Refuse($"{pattern} is set; a rank or alpha per module is not supported.");
        if (!config.TryGetProperty("r", out var r) || r.ValueKind != JsonValueKind.Number || !r.TryGetInt32(out var rank) || rank < 1)
            throw new LoraAdapterException($"LoRA adapter '{name}' ({directory}): r must be a positive integer.");
        if (rank > maxRank) Refuse($"r is {rank}, above --max-lora-rank {maxRank}; start the server with --max-lora-rank {rank} or more.");
        var alpha = config.TryGetProperty("lora_alpha", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble() : 8.0;
        var useRslora = Flag(config, "use_rslora");
        var (entries, isRegex) = TargetModules(config, Refuse);
        if (!isRegex)
            foreach (var entry in entries)
                if (!targets.AnyMatches(entry)) Refuse($"target_modules names '{entry}', which this model does not have.");

        var modules = ReadWeights(weightsPath, rank, targets, entries, isRegex, Refuse);
        if (modules.Count == 0) Refuse($"{WeightsFile} holds no lora_A/lora_B weights.");
        return new LoraAdapter(name, directory, rank, alpha, useRslora, modules);
    }

    private static (IReadOnlyList<string> Entries, bool IsRegex) TargetModules(JsonElement config, Func<string, string> refuse)
    {
        if (!config.TryGetProperty("target_modules", out var value) || value.ValueKind == JsonValueKind.Null) return ([], false);
        if (value.ValueKind == JsonValueKind.String) return ([value.GetString()!], value.GetString() != "all-linear");
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            refuse("target_modules must be a list of module names or one regular expression.");
        return ([.. value.EnumerateArray().Select(e => e.GetString()!)], false);
    }

    private static Dictionary<string, LoraWeights> ReadWeights(string path, int rank, LoraTargets targets, IReadOnlyList<string> entries, bool isRegex, Func<string, string> refuse)
    {
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (CheckpointFormatException e)
        {
            refuse($"{WeightsFile} is not readable: {e.Message}");
            throw;
        }
        using var _ = file;
        var pairs = new Dictionary<string, (SafetensorsTensorInfo? A, SafetensorsTensorInfo? B)>(StringComparer.Ordinal);
        foreach (var (key, info) in file.Tensors)
        {
            if (!key.StartsWith(Prefix, StringComparison.Ordinal)) refuse($"tensor '{key}' is not in PEFT's layout (base_model.model.<module>.lora_A.weight).");
            var rest = key[Prefix.Length..];
            if (rest.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal) || rest.Contains(".lora_magnitude_vector.", StringComparison.Ordinal))
                refuse("it holds DoRA magnitude vectors; DoRA adapters are not supported.");
            if (rest.EndsWith(".bias", StringComparison.Ordinal)) refuse($"tensor '{key}' is a bias; only adapters without biases are supported.");
            var isA = rest.EndsWith(".lora_A.weight", StringComparison.Ordinal);
            if (!isA && !rest.EndsWith(".lora_B.weight", StringComparison.Ordinal))
                refuse($"tensor '{key}' is neither lora_A.weight nor lora_B.weight (embeddings and other layer kinds are not supported).");
            var module = rest[..^".lora_A.weight".Length];
            if (!targets.Has(module)) refuse($"it has weights for '{module}', which this model does not have.");
            if (targets.Unsupported.TryGetValue(module, out var why)) refuse($"it adapts '{module}': {why}.");
            if (entries.Count > 0 && !LoraTargets.Matches(module, entries, isRegex)) refuse($"it has weights for '{module}', which its target_modules do not name.");
            var pair = pairs.GetValueOrDefault(module);
            if (isA) pairs[module] = (info, pair.B);
            else pairs[module] = (pair.A, info);
        }
        var modules = new Dictionary<string, LoraWeights>(StringComparer.Ordinal);
        foreach (var (module, (a, b)) in pairs.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (a is null || b is null) refuse($"'{module}' has lora_{(a is null ? "A" : "B")}.weight missing.");
            var (inFeatures, outFeatures) = targets.Supported[module];
            if (!a!.Shape.SequenceEqual([rank, inFeatures]))
                refuse($"'{module}' lora_A is [{string.Join(", ", a.Shape)}]; with r {rank} it must be [{rank}, {inFeatures}].");
            if (!b!.Shape.SequenceEqual([outFeatures, rank]))
                refuse($"'{module}' lora_B is [{string.Join(", ", b.Shape)}]; with r {rank} it must be [{outFeatures}, {rank}].");
            modules[module] = new LoraWeights(rank, (int)inFeatures, (int)outFeatures, Floats(file, a, refuse), Floats(file, b, refuse));
        }
        return modules;
    }

    /// <summary>The tensor's values widened to float32 (F32, BF16, F16), read from the file without a tensor.</summary>
    private static float[] Floats(SafetensorsFile file, SafetensorsTensorInfo info, Func<string, string> refuse)
    {
        var width = info.Dtype switch { "F32" => 4, "BF16" or "F16" => 2, _ => 0 };
        if (width == 0) refuse($"tensor '{info.Name}' is {info.Dtype}; adapters are read in F32, BF16 or F16.");
        var range = file.RangeOf(info);
        var bytes = new byte[range.Length];
        using (var stream = File.OpenRead(range.Path))
        {
            stream.Seek(range.Offset, SeekOrigin.Begin);
            stream.ReadExactly(bytes);
        }
        var values = new float[info.ElementCount];
        for (var i = 0; i < values.Length; i++)
        {
            var at = bytes.AsSpan(i * width, width);
            values[i] = info.Dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(at),
                "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(at) << 16),
                _ => (float)BinaryPrimitives.ReadHalfLittleEndian(at),
            };
            if (!float.IsFinite(values[i])) refuse($"tensor '{info.Name}' holds NaN or infinite values.");
        }
        return values;
    }

    private static string? Text(JsonElement config, string key) =>
        config.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static bool Flag(JsonElement config, string key) =>
        config.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.True;

    private static bool NonEmpty(JsonElement config, string key) =>
        config.TryGetProperty(key, out var value) && value.ValueKind switch
        {
            JsonValueKind.Array => value.GetArrayLength() > 0,
            JsonValueKind.Object => value.EnumerateObject().Any(),
            JsonValueKind.String => value.GetString()!.Length > 0,
            _ => false,
        };

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} (r {Rank}, alpha {Alpha}, {Modules.Count} projections)");
}

/// <summary>One adapted projection: <c>A</c> <c>[Rank, In]</c> and <c>B</c> <c>[Out, Rank]</c>, row-major float32.</summary>
public sealed record LoraWeights(int Rank, int In, int Out, float[] A, float[] B);

/// <summary>A LoRA adapter folder that cannot be served; the message is one line saying why.</summary>
public sealed class LoraAdapterException : Exception
{
    public LoraAdapterException(string message) : base(message)
    {
    }

    public LoraAdapterException(string message, Exception inner) : base(message, inner)
    {
    }

    public LoraAdapterException()
    {
    }
}
