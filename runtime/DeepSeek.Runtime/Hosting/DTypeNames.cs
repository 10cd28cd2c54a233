using static TorchSharp.torch;

namespace DeepSeek.Runtime.Hosting;

/// <summary>The <c>--dtype</c> names the model loads in (a <see cref="ScalarType"/> in lower case): the one place they are parsed.</summary>
public static class DTypeNames
{
    /// <exception cref="ArgumentException">Not a dtype the model loads in.</exception>
    public static ScalarType Parse(string name) => name switch
    {
        "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        "float64" => ScalarType.Float64,
        _ => throw new ArgumentException($"--dtype {name} is not supported; use float32, bfloat16, float16 or float64."),
    };

    /// <summary>Bytes per element, for the KV-cache size the start log reports.</summary>
    public static int Bytes(ScalarType dtype) => dtype switch { ScalarType.Float64 => 8, ScalarType.BFloat16 or ScalarType.Float16 => 2, _ => 4 };
}
