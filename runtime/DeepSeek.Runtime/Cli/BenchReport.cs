using System.Text.Json.Serialization;
using DeepSeek.Runtime.Bench;

namespace DeepSeek.Runtime.Cli;

/// <summary>What <c>bench --json</c> writes: the run's settings and one row per batch size.</summary>
public sealed record BenchReport(
    string? Shape,
    string? Model,
    int Layers,
    string Device,
    string? Dtype,
    string Quantization,
    long ResidentWeightBytes,
    double BandwidthGbs,
    IReadOnlyList<BenchResult> Rows);

/// <summary>What <c>bench --url … --json</c> writes: the run's settings and one row per concurrency level.</summary>
public sealed record HttpBenchReport(
    string Url,
    string Model,
    int PromptTokens,
    int OutputTokens,
    int RequestsPerClient,
    int PromptIdBound,
    IReadOnlyList<HttpBenchResult> Rows);

/// <summary>What <c>bench --teacher-tokens REFERENCE --json</c> writes: the model decoded and its agreement with the reference, one row per batch.</summary>
public sealed record TeacherForcedReport(
    string Reference,
    string Quantization,
    IReadOnlyList<TeacherForcedRow> Rows);

/// <summary>Source-generated serialisation: the GPU bundle is trimmed, where reflection-based JSON is off.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(BenchReport))]
[JsonSerializable(typeof(HttpBenchReport))]
[JsonSerializable(typeof(TeacherForcedReport))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
