using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>The safetensors dtype codes this runtime reads, with their TorchSharp types and element sizes.</summary>
public static class SafetensorsDtypes
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> Known = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static bool TryGet(string code, out ScalarType type, out int elementSize)
    {
        if (Known.TryGetValue(code, out var entry))
        {
            (type, elementSize) = entry;
            return true;
        }
        type = default;
        elementSize = 0;
        return false;
    }

    public static IReadOnlyCollection<string> Codes => Known.Keys;

    /// <summary>The code for a TorchSharp type, for writers (tests split and rewrite checkpoints).</summary>
    public static string CodeOf(ScalarType type) =>
        Known.FirstOrDefault(pair => pair.Value.Type == type).Key
        ?? throw new ArgumentException($"dtype {type} has no safetensors code here.", nameof(type));
}
