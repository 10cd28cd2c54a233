using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Support;

/// <summary>
/// Block-scaled FP8 checkpoints made from a fixture in the published layout, independently of the
/// runtime's reader: every 2-D weight of a decoder layer except the router becomes F8_E4M3 with a
/// float32 <c>weight_scale_inv</c> per 128×128 block (scale = block amax / 448, values rounded to the
/// nearest E4M3 number); embeddings, norms, router and LM head stay as they are.
/// </summary>
public static class Fp8Checkpoints
{
    public const int Block = 128;
    private const float Max = 448f;

    /// <summary>Every finite E4M3 value by its byte, built from float32 bit patterns (not the runtime's table).</summary>
    public static float ValueOf(int bits)
    {
        var exponent = (bits >> 3) & 0xF;
        var mantissa = bits & 0x7;
        float magnitude = exponent == 0
            ? mantissa * (1f / 512f) // subnormal: m · 2⁻⁹
            : BitConverter.Int32BitsToSingle(((exponent - 7 + 127) << 23) | (mantissa << 20));
        return (bits & 0x80) != 0 ? -magnitude : magnitude;
    }

    private static readonly (byte Bits, float Value)[] Grid =
        [.. Enumerable.Range(0, 256).Where(b => (b & 0x7F) != 0x7F).Select(b => ((byte)b, ValueOf(b))).OrderBy(p => p.Item2)];

    /// <summary>The E4M3 byte nearest to <paramref name="value"/> (which lies within ±448).</summary>
    public static byte Encode(float value)
    {
        int lo = 0, hi = Grid.Length - 1;
        while (hi - lo > 1)
        {
            var mid = (lo + hi) / 2;
            if (Grid[mid].Value <= value) lo = mid; else hi = mid;
        }
        return value - Grid[lo].Value <= Grid[hi].Value - value ? Grid[lo].Bits : Grid[hi].Bits;
    }

    public static bool IsQuantised(string name, long[] shape) =>
        shape.Length == 2 && name.StartsWith("model.layers.", StringComparison.Ordinal)
        && name.EndsWith(".weight", StringComparison.Ordinal) && !name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal);

    /// <summary>
    /// Writes <paramref name="fp8Directory"/> (the FP8 checkpoint, config with quantization_config) and
    /// <paramref name="dequantisedDirectory"/> (the same model as plain float32: fp8 · scale_inv in float32).
    /// </summary>
    public static void Write(string fixture, string fp8Directory, string dequantisedDirectory)
    {
        var entries = SafetensorsWriter.ReadAll(Path.Combine(Fixtures.Dir(fixture), SafetensorsCheckpoint.SingleFileName));
        var fp8 = new List<SafetensorsWriter.Entry>();
        var plain = new List<SafetensorsWriter.Entry>();
        foreach (var entry in entries)
        {
            if (!IsQuantised(entry.Name, entry.Shape) || entry.Dtype != "F32")
            {
                fp8.Add(entry);
                plain.Add(entry);
                continue;
            }
            var (bytes, scales, dequantised) = Quantise(ToFloats(entry.Data), (int)entry.Shape[0], (int)entry.Shape[1]);
            fp8.Add(entry with { Dtype = Float8E4M3.SafetensorsCode, Data = bytes });
            fp8.Add(new SafetensorsWriter.Entry(entry.Name + "_scale_inv", "F32",
                [Blocks(entry.Shape[0]), Blocks(entry.Shape[1])], ToBytes(scales)));
            plain.Add(entry with { Data = ToBytes(dequantised) });
        }
        foreach (var directory in new[] { fp8Directory, dequantisedDirectory })
        {
            Directory.CreateDirectory(directory);
            foreach (var file in Directory.GetFiles(Fixtures.Dir(fixture)).Where(f => Path.GetFileName(f) != SafetensorsCheckpoint.SingleFileName))
                File.Copy(file, Path.Combine(directory, Path.GetFileName(file)), overwrite: true);
        }
        SafetensorsWriter.Write(Path.Combine(fp8Directory, SafetensorsCheckpoint.SingleFileName), fp8);
        SafetensorsWriter.Write(Path.Combine(dequantisedDirectory, SafetensorsCheckpoint.SingleFileName), plain);
        EditConfig(fp8Directory, config => config["quantization_config"] = new JsonObject
        {
            ["quant_method"] = "fp8",
            ["fmt"] = "e4m3",
            ["activation_scheme"] = "dynamic",
            ["weight_block_size"] = new JsonArray(Block, Block),
        });
    }

    public static void EditConfig(string directory, Action<JsonObject> edit)
    {
        var path = Path.Combine(directory, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Per 128×128 block: scale_inv = amax / 448, byte = nearest E4M3 of w / scale_inv; and the dequantised weight.</summary>
    public static (byte[] Bytes, float[] Scales, float[] Dequantised) Quantise(float[] weight, int rows, int columns)
    {
        var (blockRows, blockColumns) = (Blocks(rows), Blocks(columns));
        var scales = new float[blockRows * blockColumns];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < columns; j++)
            {
                var b = (i / Block * blockColumns) + (j / Block);
                scales[b] = Math.Max(scales[b], Math.Abs(weight[(i * columns) + j]));
            }
        for (var b = 0; b < scales.Length; b++) scales[b] = scales[b] == 0 ? 1f : scales[b] / Max;
        var bytes = new byte[weight.Length];
        var dequantised = new float[weight.Length];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < columns; j++)
            {
                var index = (i * columns) + j;
                var scale = scales[(i / Block * blockColumns) + (j / Block)];
                bytes[index] = Encode(Math.Clamp(weight[index] / scale, -Max, Max));
                dequantised[index] = ValueOf(bytes[index]) * scale;
            }
        return (bytes, scales, dequantised);
    }

    public static int Blocks(long size) => (int)((size + Block - 1) / Block);

    public static float[] ToFloats(byte[] data)
    {
        var values = new float[data.Length / 4];
        Buffer.BlockCopy(data, 0, values, 0, data.Length);
        return values;
    }

    public static byte[] ToBytes(float[] values)
    {
        var data = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, data, 0, data.Length);
        return data;
    }
}
