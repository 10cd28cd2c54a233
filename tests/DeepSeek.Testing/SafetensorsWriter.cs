using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace DeepSeek.Testing;

/// <summary>Safetensors files for tests, written and read independently of the reader under test (hand-made tensors, shards of a fixture, LoRA adapters).</summary>
public static class SafetensorsWriter
{
    public sealed record Entry(string Name, string Dtype, long[] Shape, byte[] Data);

    public static void Write(string path, IEnumerable<Entry> entries, Func<Dictionary<string, object>, Dictionary<string, object>>? editHeader = null)
    {
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        var data = new MemoryStream();
        foreach (var entry in entries)
        {
            header[entry.Name] = new Dictionary<string, object>
            {
                ["dtype"] = entry.Dtype,
                ["shape"] = entry.Shape,
                ["data_offsets"] = new[] { data.Length, data.Length + entry.Data.Length },
            };
            data.Write(entry.Data);
        }
        if (editHeader is not null) header = editHeader(header);
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(length, json.Length);
        file.Write(length);
        file.Write(json);
        data.Position = 0;
        data.CopyTo(file);
    }

    /// <summary>Every tensor of a safetensors file with its raw bytes, read independently of the reader under test.</summary>
    public static List<Entry> ReadAll(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var entries = new List<Entry>();
        foreach (var property in header.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__") continue;
            var offsets = property.Value.GetProperty("data_offsets");
            var begin = offsets[0].GetInt64();
            var end = offsets[1].GetInt64();
            entries.Add(new Entry(property.Name, property.Value.GetProperty("dtype").GetString()!,
                property.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                bytes.AsSpan((int)(8 + headerLength + begin), (int)(end - begin)).ToArray()));
        }
        return entries;
    }

    /// <summary>A little-endian F32 tensor of <paramref name="values"/>.</summary>
    public static Entry F32(string name, long[] shape, float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return new Entry(name, "F32", shape, bytes);
    }
}
