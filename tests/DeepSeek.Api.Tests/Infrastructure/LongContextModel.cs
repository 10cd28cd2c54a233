using System.Text.Json.Nodes;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>
/// The tiny fixture with a longer context (<c>max_position_embeddings</c>): its 256 positions cannot
/// hold a system prompt describing functions, whose every byte is a token of the byte-level test
/// tokenizer, and a call after it. Same weights and tokenizer, in a folder named as the fixture (so
/// serve's default served name is unchanged); deleted on dispose.
/// </summary>
public sealed class LongContextModel : IDisposable
{
    public LongContextModel(int contextTokens)
    {
        var fixture = Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", ServeProcess.ModelName);
        System.IO.Directory.CreateDirectory(Directory);
        foreach (var name in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors" })
            File.Copy(Path.Combine(fixture, name), Path.Combine(Directory, name));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "config.json")))!;
        config["max_position_embeddings"] = contextTokens;
        File.WriteAllText(Path.Combine(Directory, "config.json"), config.ToJsonString());
    }

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"deepseek-long-context-{Guid.NewGuid():N}");

    public string Directory => Path.Combine(_root, ServeProcess.ModelName);

    public void Dispose() => System.IO.Directory.Delete(_root, recursive: true);
}
