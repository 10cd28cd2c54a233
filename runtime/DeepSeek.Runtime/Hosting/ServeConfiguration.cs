using System.Globalization;
using DeepSeek.Contract;
using DeepSeek.Engine;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Experts;
using static TorchSharp.torch;
using Flags = DeepSeek.Contract.RuntimeContract.Flags;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// What <c>serve</c> was asked to do, flags and environment defaults merged: built once from the
/// command line, checked once by <see cref="Validate"/>, then handed to the host. Its own defaults are
/// written here, the engine's in <see cref="EngineOptions"/>, the ports in <see cref="RuntimeContract"/>.
/// </summary>
public sealed record ServeConfiguration
{
    /// <summary>Every default, for flags that need one before the record is built.</summary>
    public static ServeConfiguration Defaults { get; } = new();

    public string Host { get; init; } = "0.0.0.0";
    public int HttpPort { get; init; } = RuntimeContract.Http;
    public int GrpcPort { get; init; } = RuntimeContract.Grpc;
    /// <summary>When set, <c>/v1/*</c> and the gRPC Inference service need <c>Authorization: Bearer</c> with it.</summary>
    public string? ApiKey { get; init; }
    /// <summary>A file whose first line is the key (a mounted Secret); exclusive with <see cref="ApiKey"/>.</summary>
    public string? ApiKeyFile { get; init; }
    /// <summary>Largest accepted HTTP request body; larger ones get 413.</summary>
    public long MaxRequestBytes { get; init; } = 8 * 1024 * 1024;
    /// <summary>The checkpoint folder <c>serve</c> opens as a <see cref="ModelFolder"/> in <see cref="DType"/> and <see cref="Quantization"/>.</summary>
    public string ModelDirectory { get; init; } = "";
    public ScalarType DType { get; init; } = ScalarType.Float32;
    public WeightQuantization Quantization { get; init; } = WeightQuantization.None;
    public EngineOptions Engine { get; init; } = EngineOptions.Defaults;
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>This process's expert-parallel group; world size 1 (the default) is no group.</summary>
    public ExpertParallelSettings Parallel { get; init; } = new();
    /// <summary>Ranks this pod runs as child processes; 1 is this process alone.</summary>
    public int LocalRanks { get; init; } = 1;
    /// <summary>LibTorch's intra-op threads as asked (<c>--threads</c>); null: <see cref="CpuThreads"/> chooses.</summary>
    public int? Threads { get; init; }
    /// <summary>LoRA adapters served from the start (<c>--lora-modules NAME=DIR …</c>).</summary>
    public IReadOnlyList<LoraModule> LoraModules { get; init; } = [];
    /// <summary>Adapters may be loaded and unloaded at run time (<c>--enable-lora-updates</c>).</summary>
    public bool EnableLoraUpdates { get; init; }

    /// <summary>Whether this server serves LoRA adapters at all (then the model gets adapter slots).</summary>
    public bool ServesLora => LoraModules.Count > 0 || EnableLoraUpdates;

    /// <summary>
    /// Every problem, flag by flag, in one message, so a misconfigured pod says all that is wrong at
    /// once. <paramref name="nativeHelperPresent"/>: whether the NCCL transport could load its helper.
    /// </summary>
    /// <exception cref="ArgumentException">Anything out of range or inconsistent.</exception>
    public void Validate(bool nativeHelperPresent)
    {
        if (Problems(nativeHelperPresent).ToList() is { Count: > 0 } problems) throw new ArgumentException(string.Join(" ", problems));
    }

    private IEnumerable<string> Problems(bool nativeHelperPresent)
    {
        foreach (var (flag, port) in new[] { (Flags.HttpPort, HttpPort), (Flags.GrpcPort, GrpcPort) })
            if (port is < 0 or > 65535) yield return $"{flag} must be between 0 and 65535, not {port}.";
        if (MaxRequestBytes < 1) yield return $"{Flags.MaxRequestBytes} must be at least 1, not {MaxRequestBytes}.";
        if (DeviceProblem(Engine.Device) is { } device) yield return device;
        foreach (var problem in Engine.Problems()) yield return problem;
        foreach (var problem in Parallel.Problems()) yield return problem;
        if (Parallel.TransportProblem(Engine.Device, nativeHelperPresent) is { } transport) yield return transport;
        if (Quantization.DTypeProblem(DType) is { } dtype) yield return dtype;
        if (DrainTimeout < TimeSpan.Zero) yield return $"{Flags.DrainTimeout} must be 0 or more seconds, not {DrainTimeout.TotalSeconds}.";
        if (Threads is < 1) yield return $"{Flags.Threads} must be at least 1, not {Threads}.";
        if (LocalRanks < 1) yield return $"{Flags.LocalRanks} must be at least 1, not {LocalRanks}.";
        foreach (var name in LoraModules.GroupBy(m => m.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key))
            yield return $"{Flags.LoraModules} names the adapter '{name}' more than once.";
        if (LoraModules.FirstOrDefault(m => m.Name == Engine.ServedModelName) is { } clash)
            yield return $"{Flags.LoraModules} adapter '{clash.Name}' has the served model's name; choose another.";
        if (ServesLora && Parallel.IsGroup) yield return $"{Flags.LoraModules} and {Flags.EnableLoraUpdates} are not served by an expert-parallel group yet; use --world-size 1.";
    }

    /// <summary>cpu, cuda or cuda:N; anything else would only fail later, on the engine thread.</summary>
    public static string? DeviceProblem(string device) =>
        device == "cpu" || device == "cuda" || (device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            ? null
            : $"{Flags.Device} {device} is not a device; use cpu, cuda or cuda:N.";
}

/// <summary>One <c>--lora-modules</c> entry: an adapter's name and its PEFT folder.</summary>
public sealed record LoraModule(string Name, string Directory)
{
    /// <summary><c>NAME=DIR</c>, as vLLM writes it.</summary>
    /// <exception cref="ArgumentException">Not of that form.</exception>
    public static LoraModule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || equals == text.Length - 1)
            throw new ArgumentException($"{Flags.LoraModules} takes NAME=DIR entries (an adapter's name and its PEFT folder), not '{text}'.");
        return new LoraModule(text[..equals].Trim(), text[(equals + 1)..].Trim());
    }

    /// <summary>Space- or comma-separated entries: the form of the flag's environment variable.</summary>
    public static IReadOnlyList<LoraModule> ParseAll(IEnumerable<string> entries) =>
        [.. entries.SelectMany(e => e.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(Parse)];
}
