using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>The tiny V3 fixture's prompts and their unsharded greedy continuations (reference.json), up to the first near-tie.</summary>
internal static class ReferencePrompts
{
    public static string FixtureDir => Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny");

    public static async Task<List<(int[] Input, int[] Expected)>> LoadAsync() =>
        JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(FixtureDir, "reference.json"))).RootElement.GetProperty("prompts")
            .EnumerateArray().Select(p =>
            {
                var greedy = p.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray();
                var margins = p.GetProperty("greedy_margins").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                // Past a near-tie the argmax may flip on rounding; compare up to the first one.
                var reliable = Array.FindIndex(margins, m => m < 1e-3) is var tie and >= 0 ? tie : greedy.Length;
                return (Input: p.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray(), Expected: greedy[..reliable]);
            }).ToList();
}
