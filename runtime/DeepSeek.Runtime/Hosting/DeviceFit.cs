using System.Globalization;
using DeepSeek.Model.Planning;
using DeepSeek.Runtime.Cli;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Whether the model a serve process is about to load fits its device, decided from config.json
/// before a byte of weights is read: the memory plan of <c>inspect --plan</c> for this run's weight
/// format, expert-parallel size and KV settings, against what the device has free. A model that
/// cannot fit is refused at once with the plan, instead of failing minutes into the load with an
/// allocator's error (or the kernel's OOM killer on a CPU).
/// </summary>
public static class DeviceFit
{
    /// <summary>
    /// The refusal, or null when the plan fits <paramref name="freeBytes"/>: a first line that says what does
    /// not fit and what to change, then the plan per expert-parallel size.
    /// </summary>
    public static string? Problem(ModelFolder folder, ServeConfiguration configuration, long freeBytes)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(configuration);
        var parallel = configuration.Parallel;
        // The plan prices a rank holding the replicated weights and its expert shard. Today only the
        // leader holds the replicated ones; a member holds its shard alone, which the plan does not price.
        if (!parallel.IsLeader || freeBytes <= 0) return null;
        var config = folder.Config;
        var options = new MemoryPlanOptions(parallel.RedundantExperts, configuration.Engine.KvCacheMemoryFraction, configuration.Engine.ContextTokens(config.MaxPositionEmbeddings));
        var format = WeightFormat.Of(folder.DType, folder.Quantization, config.Quantization);
        var world = Math.Max(1, parallel.WorldSize);
        var plan = MemoryPlan.For(config, WeightBytes.Of(config, format), freeBytes, world, options);
        if (plan.Fits) return null;
        static string G(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture);
        var device = configuration.Engine.Device;
        // Under 300 characters: the operator quotes that much of a pod's termination message in the model's status.
        var summary = $"{config.ModelType} does not fit {device} ({G(freeBytes)} GiB free) at expert-parallel size {world} in {format}: "
            + $"{G(plan.WeightBytes)} GiB of weights, {G(plan.ReserveBytes)} GiB reserve, KV room for {plan.KvTokens.ToString("N0", CultureInfo.InvariantCulture)} "
            + $"of {options.ContextTokens.ToString("N0", CultureInfo.InvariantCulture)} context tokens. Use a larger expert-parallel size, --quantization fp8 or int4, or a shorter --max-context-length. The plan:";
        return string.Join('\n', [summary, "", .. InspectPlan.Lines(config, freeBytes, world, options)]);
    }
}
