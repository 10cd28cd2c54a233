using System.Text.Json;

namespace DeepSeek.Engine.IntegrationTests.Support;

/// <summary>The reference checkpoints (tests/fixtures) and their Hugging Face greedy continuations.</summary>
public static class ReferenceCheckpoints
{
    public const string V3Tiny = "deepseek-v3-tiny";
    public const string V2LiteTiny = "deepseek-v2-lite-tiny";

    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    public static IReadOnlyList<ReferencePrompt> Prompts(string name) =>
        JsonSerializer.Deserialize<ReferenceFile>(File.ReadAllText(Path.Combine(Dir(name), "reference.json")), SnakeCase)!.Prompts;

    public sealed record ReferenceFile(List<ReferencePrompt> Prompts);

    public sealed record ReferencePrompt(int[] InputIds, int[] Greedy, double[] GreedyMargins)
    {
        /// <summary>Greedy tokens up to the first step whose top-2 margin is below 1e-3 (where rounding may pick either).</summary>
        public int[] ReliableGreedy
        {
            get
            {
                var cut = Array.FindIndex(GreedyMargins, m => m < 1e-3);
                return cut < 0 ? Greedy : Greedy[..cut];
            }
        }
    }
}
