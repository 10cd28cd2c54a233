using System.Text.Json;

namespace DeepSeek.Model.Tests.Support;

/// <summary>The reference checkpoints copied next to the test assembly (see the csproj).</summary>
public static class Fixtures
{
    public const string V3Tiny = "deepseek-v3-tiny";
    public const string V2LiteTiny = "deepseek-v2-lite-tiny";
    public const string V3Yarn = "example-v3-yarn";
    /// <summary>DeepSeek-V3 tiny in the published block-scaled FP8 layout (HF reference on the dequantised values).</summary>
    public const string V3TinyFp8 = "deepseek-v3-tiny-fp8";
    public const string V3TinyFp8Sharded = "deepseek-v3-tiny-fp8-sharded";
    /// <summary>The published DeepSeek-V3 and V2-Lite config.json without weights: what the memory plan reads.</summary>
    public const string V3Config = "deepseek-v3-config";
    public const string V2LiteConfig = "deepseek-v2-lite-config";

    public static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string Dir(string name) => Path.Combine(Root, name);

    public static bool Exists(string name) => File.Exists(Path.Combine(Dir(name), "reference.json"));

    public static Reference LoadReference(string name)
    {
        return JsonSerializer.Deserialize<Reference>(File.ReadAllText(Path.Combine(Dir(name), "reference.json")), SnakeCase)!;
    }

    public sealed record Reference(string Arch, List<Prompt> Prompts);

    public sealed record Prompt(
        long[] InputIds,
        double[] LastLogits,
        long[][] Top5Ids,
        double[][] Top5Logprobs,
        long[] Greedy,
        double[] GreedyMargins);
}
