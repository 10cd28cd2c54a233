using System.Globalization;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Planning;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// <c>inspect --plan</c>: per weight format, one rank's memory at each expert-parallel size up to the
/// GPUs given (and the smallest size that fits, where that is more), from config.json alone.
/// </summary>
public static class InspectPlan
{
    /// <summary>The formats planned: what the runtime holds today first, then the FP8 target.</summary>
    public static IReadOnlyList<WeightFormat> Formats(DeepSeekConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return [WeightFormat.Bf16, WeightFormat.Int4(), WeightFormat.Fp8(config.Quantization)];
    }

    /// <summary>The sizes a format's rows show: powers of two up to <paramref name="gpus"/>, then the smallest that fits if it is larger.</summary>
    public static IReadOnlyList<MemoryPlan> Rows(DeepSeekConfig config, WeightBytes weights, long gpuMemoryBytes, int gpus, MemoryPlanOptions options)
    {
        var sizes = MemoryPlan.ExpertParallelSizes(config);
        var shown = sizes.Where(size => size <= gpus).Select(size => MemoryPlan.For(config, weights, gpuMemoryBytes, size, options)).ToList();
        if (shown.Any(plan => plan.Fits)) return shown;
        var smallest = MemoryPlan.Smallest(config, weights, gpuMemoryBytes, options);
        if (smallest is not null) shown.Add(smallest);
        return shown;
    }

    /// <summary>
    /// The plan as text: a line on what is planned, a Markdown table (one row per format and EP size,
    /// sizes in GiB, so it reads in a terminal and pastes into docs), the verdict per format, and the
    /// formulas with what each format assumes.
    /// </summary>
    public static IReadOnlyList<string> Lines(DeepSeekConfig config, long gpuMemoryBytes, int gpus, MemoryPlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        static string G(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture);
        string[] header = ["format", "EP", "replicated GiB", "experts a layer", "experts GiB", "reserve GiB", "KV cache GiB", "KV tokens", "fits"];
        var rows = new List<string[]>();
        var verdicts = new List<string>();
        var bytesPerToken = 0L;
        foreach (var format in Formats(config))
        {
            var weights = WeightBytes.Of(config, format);
            var label = Label(format);
            foreach (var plan in Rows(config, weights, gpuMemoryBytes, gpus, options))
            {
                bytesPerToken = plan.KvBytesPerToken;
                rows.Add([label, N(plan.ExpertParallelSize), G(plan.ReplicatedBytes), N(plan.ExpertsPerRankPerLayer), G(plan.RoutedExpertBytes),
                    G(plan.ReserveBytes), G(plan.KvCacheBytes), N(plan.KvTokens), plan.Fits ? "yes" : "no"]);
            }
            var smallest = MemoryPlan.Smallest(config, weights, gpuMemoryBytes, options);
            verdicts.Add(smallest is null
                ? $"{label}: no expert-parallel size up to {N(config.NRoutedExperts)} fits."
                : $"{label}: smallest EP that fits is {N(smallest.ExpertParallelSize)}{(smallest.ExpertParallelSize > gpus ? $", more than the {N(gpus)} GPUs given" : "")}"
                  + $" ({G(smallest.WeightBytes)} GiB of weights a rank, {N(smallest.KvTokens)} KV tokens).");
        }
        var fraction = options.KvCacheMemoryFraction.ToString("0.##", CultureInfo.InvariantCulture);
        var reserveShare = (1 - options.KvCacheMemoryFraction).ToString("0.##", CultureInfo.InvariantCulture);
        var lines = new List<string>
        {
            $"Memory plan of {config.ModelType}, one rank of {N(gpus)} GPUs of {G(gpuMemoryBytes)} GiB per expert-parallel (EP) size: "
                + $"non-expert weights replicated, routed experts sharded, {N(options.RedundantExperts)} redundant expert copies a layer.",
            "",
        };
        lines.AddRange(MarkdownTable.Lines(header, rows, leftAligned: 1));
        lines.Add("");
        lines.AddRange(verdicts);
        lines.Add("");
        lines.AddRange(Formats(config).Select(format => $"{Label(format)}: {format.Assumes}."));
        lines.Add($"reserve = {G(MemoryReserve.DeviceOverheadBytes)} GiB device overhead + {reserveShare} × (GPU − overhead − weights): "
            + $"what serve's --kv-cache-memory-fraction {fraction} leaves for activations and workspaces. KV cache = GPU − weights − reserve.");
        lines.Add($"KV tokens = KV cache / {N(bytesPerToken)} bytes a token ({config.NumHiddenLayers} layers × (kv_lora_rank {config.KvLoraRank} "
            + $"+ qk_rope_head_dim {config.QkRopeHeadDim}) × {options.KvCacheElementBytes} bytes); fits = room for one {N(options.ContextTokens)}-token context.");
        return lines;
    }

    /// <summary>bf16 is what a checkpoint, FP8 included, is held as today; FP8 kept resident is the target.</summary>
    private static string Label(WeightFormat format) =>
        format.ResidentToday ? format.Name : $"{format.Name} (target)";
}
