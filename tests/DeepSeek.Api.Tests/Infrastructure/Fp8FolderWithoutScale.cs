using System.Text;
using System.Text.Json.Nodes;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>
/// The tiny fixture as a broken FP8 checkpoint: config.json declares block-scaled FP8 and one weight is
/// stored as <c>F8_E4M3</c>, but its <c>_scale_inv</c> tensor is missing. Deleted on dispose.
/// </summary>
public sealed class Fp8FolderWithoutScale : IDisposable
{
    public const string Weight = "model.layers.0.self_attn.o_proj.weight";

    public Fp8FolderWithoutScale(string fixture)
    {
        Directory.CreateDirectory(Path);
        foreach (var name in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            File.Copy(System.IO.Path.Combine(fixture, name), System.IO.Path.Combine(Path, name));
        var config = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(fixture, "config.json")))!;
        config["quantization_config"] = JsonNode.Parse("""{"quant_method":"fp8","fmt":"e4m3","activation_scheme":"dynamic","weight_block_size":[128,128]}""");
        File.WriteAllText(System.IO.Path.Combine(Path, "config.json"), config.ToJsonString());
        RewriteAsFp8(System.IO.Path.Combine(fixture, "model.safetensors"), System.IO.Path.Combine(Path, "model.safetensors"));
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"deepseek-fp8-no-scale-{Guid.NewGuid():N}");

    /// <summary>Every tensor as it was, but <see cref="Weight"/> one byte per element (zeros) as F8_E4M3.</summary>
    private static void RewriteAsFp8(string source, string target)
    {
        var bytes = File.ReadAllBytes(source);
        var headerLength = (int)BitConverter.ToInt64(bytes, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, headerLength))!.AsObject();
        var data = new MemoryStream();
        foreach (var (name, node) in header.ToList())
        {
            if (name == "__metadata__") continue;
            var offsets = node!["data_offsets"]!.AsArray();
            var (start, end) = ((long)offsets[0]!, (long)offsets[1]!);
            var tensor = bytes.AsSpan(8 + headerLength + (int)start, (int)(end - start)).ToArray();
            if (name == Weight)
            {
                tensor = new byte[tensor.Length / 4];
                node["dtype"] = "F8_E4M3";
            }
            node["data_offsets"] = new JsonArray(data.Length, data.Length + tensor.Length);
            data.Write(tensor);
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var file = File.Create(target);
        file.Write(BitConverter.GetBytes((long)json.Length));
        file.Write(json);
        data.Position = 0;
        data.CopyTo(file);
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
