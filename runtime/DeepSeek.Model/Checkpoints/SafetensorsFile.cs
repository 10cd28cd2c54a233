using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// One <c>.safetensors</c> file, memory-mapped: an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the raw little-endian data. Tensors are
/// copied from the mapping straight into tensor storage, one at a time, so loading never holds a
/// managed copy of the file. The header is validated up front so a truncated or corrupt file fails
/// at open with the file named, not halfway through a load.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Headers past this size are not safetensors headers (the format itself caps them at 100 MB).</summary>
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile? _mapping;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly long _dataStart;

    public string Path { get; }

    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(string path, MemoryMappedFile? mapping, MemoryMappedViewAccessor? view, long dataStart,
        IReadOnlyDictionary<string, SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _mapping = mapping;
        _view = view;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public static SafetensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; this machine is not.");
        var fileName = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new CheckpointFormatException($"{path}: file not found.");
        var length = new FileInfo(path).Length;
        if (length < 8)
            throw new CheckpointFormatException($"{fileName}: {length} bytes is too short for a safetensors file (truncated?).");

        byte[] header;
        using (var stream = File.OpenRead(path))
        {
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            var headerLength = BitConverter.ToInt64(prefix);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes)
                throw new CheckpointFormatException($"{fileName}: header length {headerLength} is not plausible; the file is corrupt or not safetensors.");
            if (8 + headerLength > length)
                throw new CheckpointFormatException($"{fileName}: header claims {headerLength} bytes but the file has {length - 8} after the length prefix (truncated).");
            header = new byte[headerLength];
            stream.ReadExactly(header);
        }

        var dataStart = 8 + header.LongLength;
        var dataLength = length - dataStart;
        var (tensors, metadata) = ParseHeader(fileName, header, dataLength);

        if (dataLength == 0) return new SafetensorsFile(path, null, null, dataStart, tensors, metadata);
        var mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        var view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        return new SafetensorsFile(path, mapping, view, dataStart, tensors, metadata);
    }

    internal static (Dictionary<string, SafetensorsTensorInfo>, Dictionary<string, string>) ParseHeader(
        string fileName, byte[] header, long dataLength)
    {
        JsonDocument document;
        try
        {
            var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(header);
            document = JsonDocument.Parse(text);
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException)
        {
            throw new CheckpointFormatException($"{fileName}: the header is not valid UTF-8 JSON ({e.Message}); the file is corrupt.", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"{fileName}: the header is not a JSON object; the file is corrupt.");
            var tensors = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind == JsonValueKind.Object)
                        foreach (var item in property.Value.EnumerateObject())
                            metadata[item.Name] = item.Value.ToString();
                    continue;
                }
                tensors[property.Name] = ParseEntry(fileName, property.Name, property.Value, dataLength);
            }
            return (tensors, metadata);
        }
    }

    private static SafetensorsTensorInfo ParseEntry(string fileName, string name, JsonElement entry, long dataLength)
    {
        string Where() => $"{fileName}: tensor '{name}'";
        if (entry.ValueKind != JsonValueKind.Object
            || !entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !entry.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
            throw new CheckpointFormatException($"{Where()}: header entry needs dtype, shape and two data_offsets; the file is corrupt.");

        var dtype = dtypeElement.GetString()!;
        long[] shape;
        long begin, end;
        try
        {
            shape = shapeElement.EnumerateArray().Select(d => d.GetInt64()).ToArray();
            begin = offsetsElement[0].GetInt64();
            end = offsetsElement[1].GetInt64();
        }
        catch (FormatException e)
        {
            throw new CheckpointFormatException($"{Where()}: shape and data_offsets must be integers; the file is corrupt.", e);
        }
        if (shape.Any(d => d < 0))
            throw new CheckpointFormatException($"{Where()}: negative dimension in shape [{string.Join(", ", shape)}].");
        if (begin < 0 || end < begin)
            throw new CheckpointFormatException($"{Where()}: data_offsets [{begin}, {end}] are not a byte range; the file is corrupt.");
        if (end > dataLength)
            throw new CheckpointFormatException($"{Where()}: data ends at byte {end} but the data section has only {dataLength} bytes (truncated file).");
        var info = new SafetensorsTensorInfo(name, dtype, shape, begin, end);
        var elementSize = dtype == Float8E4M3.SafetensorsCode ? 1 : SafetensorsDtypes.TryGet(dtype, out _, out var size) ? size : 0;
        if (elementSize > 0 && info.ElementCount * elementSize != info.ByteLength)
            throw new CheckpointFormatException(
                $"{Where()}: shape [{string.Join(", ", shape)}] of {dtype} needs {info.ElementCount * elementSize} bytes but data_offsets span {info.ByteLength}; the file is corrupt.");
        return info;
    }

    /// <summary>Where a tensor's bytes lie in the file, for <see cref="CheckpointReadAhead"/>.</summary>
    public CheckpointReadAhead.FileRange RangeOf(SafetensorsTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return new(Path, _dataStart + info.Begin, info.ByteLength);
    }

    /// <summary>
    /// Copies one tensor into <paramref name="target"/> (its shape, any dtype, any device), converting on
    /// the way. A CPU target of the stored dtype is filled straight from the mapping; any other goes
    /// through <paramref name="staging"/> in pieces, so no whole-tensor temporary is allocated on the host
    /// or the device. Floating data is checked for NaN and infinity as <see cref="Load"/> does.
    /// </summary>
    /// <exception cref="CheckpointFormatException">The tensor holds NaN or infinity, or its conversion overflowed.</exception>
    public void CopyTo(string name, Tensor target, HostStaging staging)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(staging);
        var fileName = System.IO.Path.GetFileName(Path);
        var (info, sourceType) = Readable(name);
        if (!info.Shape.SequenceEqual(target.shape))
            throw new ArgumentException($"{fileName}: tensor '{name}' is [{string.Join(", ", info.Shape)}], the target [{string.Join(", ", target.shape)}].", nameof(target));

        using var scope = NewDisposeScope();
        var nonFinite = false;
        if (info.ByteLength > 0)
        {
            if (target.device_type == DeviceType.CPU && target.dtype == sourceType && target.is_contiguous())
            {
                nonFinite = CopyElements(target, info, sourceType, 0, info.ElementCount);
            }
            else if (target.is_contiguous())
            {
                var flat = target.view(-1);
                for (long start = 0; start < info.ElementCount;)
                {
                    var buffer = staging.For(sourceType);
                    var count = Math.Min(buffer.shape[0], info.ElementCount - start);
                    var piece = buffer.narrow(0, 0, count);
                    nonFinite |= CopyElements(piece, info, sourceType, start, count);
                    flat.narrow(0, start, count).copy_(piece);
                    start += count;
                }
            }
            else
            {
                var host = empty(info.Shape, sourceType, CPU);
                nonFinite = CopyElements(host, info, sourceType, 0, info.ElementCount);
                target.copy_(host);
            }
        }
        if (nonFinite || (NonFiniteValues.ConversionMayOverflow(sourceType, target.dtype) && !isfinite(target).all().item<bool>()))
            throw new CheckpointFormatException($"{fileName}: tensor '{name}' holds NaN or infinite values; the file is corrupt.");
    }

    /// <summary>
    /// Materialises one tensor as <paramref name="dtype"/> on <paramref name="device"/>. Floating data is
    /// checked for NaN and infinity (<see cref="NonFiniteValues"/>), and after a conversion that can overflow.
    /// </summary>
    public Tensor Load(string name, ScalarType dtype, Device device)
    {
        var fileName = System.IO.Path.GetFileName(Path);
        var (info, sourceType) = Readable(name);

        using var scope = NewDisposeScope();
        var host = empty(info.Shape, sourceType, CPU);
        var nonFinite = info.ByteLength > 0 && CopyElements(host, info, sourceType, 0, info.ElementCount);
        var result = host.to(dtype, device);
        if (nonFinite || (NonFiniteValues.ConversionMayOverflow(sourceType, dtype) && !isfinite(result).all().item<bool>()))
            throw new CheckpointFormatException($"{fileName}: tensor '{name}' holds NaN or infinite values; the file is corrupt.");
        return result.MoveToOuterDisposeScope();
    }

    private (SafetensorsTensorInfo Info, ScalarType Type) Readable(string name)
    {
        var fileName = System.IO.Path.GetFileName(Path);
        if (!Tensors.TryGetValue(name, out var info))
            throw new CheckpointFormatException($"{fileName}: no tensor named '{name}'.");
        if (!SafetensorsDtypes.TryGet(info.Dtype, out var sourceType, out _))
            throw new CheckpointFormatException(
                info.Dtype == Float8E4M3.SafetensorsCode
                    ? $"{fileName}: tensor '{name}' is {info.Dtype}; FP8 weights are read with their block scales, which needs config.json's quantization_config ({Configuration.Fp8BlockQuantization.Supported})."
                    : $"{fileName}: tensor '{name}' has dtype {info.Dtype}, which this runtime does not read (supported: {string.Join(", ", SafetensorsDtypes.Codes)}, and {Float8E4M3.SafetensorsCode} with block scales).");
        return (info, sourceType);
    }

    /// <summary>
    /// The raw bytes of an F8_E4M3 tensor as uint8 of its shape on the CPU, for
    /// <see cref="Fp8BlockWeights"/>: TorchSharp has no float8 type to load it as.
    /// </summary>
    public Tensor LoadFloat8Bytes(string name)
    {
        var fileName = System.IO.Path.GetFileName(Path);
        if (!Tensors.TryGetValue(name, out var info))
            throw new CheckpointFormatException($"{fileName}: no tensor named '{name}'.");
        if (info.Dtype != Float8E4M3.SafetensorsCode)
            throw new CheckpointFormatException($"{fileName}: tensor '{name}' is {info.Dtype}, not {Float8E4M3.SafetensorsCode}.");
        var host = empty(info.Shape, ScalarType.Byte, CPU);
        if (info.ByteLength > 0) CopyElements(host, info, ScalarType.Byte, 0, info.ElementCount);
        return host;
    }

    /// <summary>
    /// Copies elements <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> of a
    /// stored tensor into <paramref name="destination"/> (contiguous, of the stored dtype, <paramref name="count"/>
    /// elements), in pieces of at most 1 GiB: a span over tensor storage is limited to 2 GiB.
    /// </summary>
    /// <returns>Whether the bytes, read as <paramref name="stored"/>, hold NaN or infinity: each block is looked at while it is in cache.</returns>
    private unsafe bool CopyElements(Tensor destination, SafetensorsTensorInfo info, ScalarType stored, long first, long count)
    {
        const int Block = 1 << 20;
        var handle = _view!.SafeMemoryMappedViewHandle;
        byte* basePointer = null;
        handle.AcquirePointer(ref basePointer);
        try
        {
            var elementSize = info.ByteLength / info.ElementCount;
            var source = basePointer + _view.PointerOffset + _dataStart + info.Begin + first * elementSize;
            var chunkElements = (1L << 30) / elementSize;
            using var flat = destination.view(-1);
            var nonFinite = false;
            for (long start = 0; start < count; start += chunkElements)
            {
                var n = Math.Min(chunkElements, count - start);
                using var chunk = flat.narrow(0, start, n);
                var from = new ReadOnlySpan<byte>(source + start * elementSize, checked((int)(n * elementSize)));
                var to = chunk.bytes;
                for (var offset = 0; offset < from.Length; offset += Block)
                {
                    var block = from.Slice(offset, Math.Min(Block, from.Length - offset));
                    block.CopyTo(to[offset..]);
                    nonFinite |= NonFiniteValues.Any(block, stored);
                }
            }
            return nonFinite;
        }
        finally
        {
            handle.ReleasePointer();
        }
    }

    public void Dispose()
    {
        _view?.Dispose();
        _mapping?.Dispose();
    }
}

/// <summary>One tensor's entry in a safetensors header: dtype code, shape, and byte range in the data section.</summary>
public sealed record SafetensorsTensorInfo(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (product, size) => product * size);

    public long ByteLength => End - Begin;
}
