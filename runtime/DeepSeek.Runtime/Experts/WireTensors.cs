using DeepSeek.Model.Checkpoints;
using DeepSeek.Runtime.Grpc.V1;
using Google.Protobuf;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// Tensors on the expert wire: raw little-endian bytes with a safetensors dtype code and a shape,
/// so both ends need nothing but the bytes (no pickle, no framework format). Decoding checks that
/// the byte count matches dtype × shape: a malformed message is a clear error, never a crash.
/// </summary>
public static class WireTensors
{
    /// <summary>Copies <paramref name="tensor"/> to the host (contiguous) and wraps its bytes.</summary>
    public static WireTensor Encode(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("The expert wire format is little-endian.");
        using var scope = NewDisposeScope();
        var host = tensor.cpu().contiguous();
        var bytes = new byte[host.NumberOfElements * host.ElementSize];
        if (bytes.Length > 0) host.bytes.CopyTo(bytes);
        var wire = new WireTensor { Dtype = SafetensorsDtypes.CodeOf(host.dtype), Data = UnsafeByteOperations.UnsafeWrap(bytes) };
        wire.Shape.AddRange(host.shape);
        return wire;
    }

    /// <summary>A tensor on <paramref name="device"/> holding the message's values.</summary>
    /// <exception cref="FormatException">Unknown dtype, negative dimension, or a byte count that does not match.</exception>
    public static Tensor Decode(WireTensor wire, Device device)
    {
        ArgumentNullException.ThrowIfNull(wire);
        if (!SafetensorsDtypes.TryGet(wire.Dtype, out var type, out var elementSize))
            throw new FormatException($"Unknown tensor dtype '{wire.Dtype}'; expected one of {string.Join(", ", SafetensorsDtypes.Codes)}.");
        long elements = 1;
        foreach (var dimension in wire.Shape)
        {
            if (dimension < 0) throw new FormatException($"Tensor shape [{string.Join(", ", wire.Shape)}] has a negative dimension.");
            elements = checked(elements * dimension);
        }
        if (checked(elements * elementSize) != wire.Data.Length)
            throw new FormatException($"Tensor of dtype {wire.Dtype} and shape [{string.Join(", ", wire.Shape)}] needs {elements * elementSize} bytes, the message has {wire.Data.Length}.");
        var host = empty([.. wire.Shape], type);
        if (wire.Data.Length > 0) wire.Data.Span.CopyTo(host.bytes);
        if (device.type == DeviceType.CPU) return host;
        using (host) return host.to(device);
    }
}
