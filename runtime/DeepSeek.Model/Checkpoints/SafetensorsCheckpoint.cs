using System.Text.Json;
using TorchSharp;
using DeepSeek.Model.Configuration;
using static TorchSharp.torch;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// The weights of a Hugging Face-layout folder: <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c>'s <c>weight_map</c>. Every shard is opened (and its header
/// checked) when the checkpoint is opened.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly Dictionary<string, SafetensorsFile> _fileOfTensor;
    private readonly List<SafetensorsFile> _files;

    public string Directory { get; }

    private SafetensorsCheckpoint(string directory, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> fileOfTensor)
    {
        Directory = directory;
        _files = files;
        _fileOfTensor = fileOfTensor;
    }

    public IEnumerable<string> TensorNames => _fileOfTensor.Keys;

    public IReadOnlyList<SafetensorsFile> Files => _files;

    public static SafetensorsCheckpoint Open(string directory)
    {
        var indexPath = Path.Combine(directory, IndexFileName);
        var singlePath = Path.Combine(directory, SingleFileName);
        if (File.Exists(indexPath)) return OpenSharded(directory, indexPath);
        if (File.Exists(singlePath))
        {
            var file = SafetensorsFile.Open(singlePath);
            return new SafetensorsCheckpoint(directory, [file], file.Tensors.Keys.ToDictionary(name => name, _ => file, StringComparer.Ordinal));
        }
        throw new CheckpointFormatException($"{directory}: neither {SingleFileName} nor {IndexFileName} exists; is this a Hugging Face checkpoint folder?");
    }

    private static SafetensorsCheckpoint OpenSharded(string directory, string indexPath)
    {
        Dictionary<string, string> weightMap;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"{IndexFileName}: no \"weight_map\" object.");
            weightMap = map.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{IndexFileName}: not valid JSON ({e.Message}).", e);
        }

        var files = new List<SafetensorsFile>();
        var byName = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal))
            {
                if (shard.Length == 0 || shard.Contains('/', StringComparison.Ordinal) || shard.Contains('\\', StringComparison.Ordinal))
                    throw new CheckpointFormatException($"{IndexFileName}: shard name '{shard}' must be a file name in the checkpoint folder.");
                var shardPath = Path.Combine(directory, shard);
                if (!File.Exists(shardPath))
                    throw new CheckpointFormatException($"{IndexFileName} lists shard '{shard}', which does not exist in {directory}.");
                var file = SafetensorsFile.Open(shardPath);
                files.Add(file);
                byName[shard] = file;
            }
            var fileOfTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, shard) in weightMap)
            {
                var file = byName[shard];
                if (!file.Tensors.ContainsKey(tensor))
                    throw new CheckpointFormatException($"{IndexFileName} maps tensor '{tensor}' to '{shard}', but that file has no such tensor.");
                fileOfTensor[tensor] = file;
            }
            return new SafetensorsCheckpoint(directory, files, fileOfTensor);
        }
        catch
        {
            foreach (var file in files) file.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _fileOfTensor.ContainsKey(name);

    public SafetensorsTensorInfo Info(string name) =>
        _fileOfTensor.TryGetValue(name, out var file)
            ? file.Tensors[name]
            : throw new CheckpointFormatException($"{Directory}: the checkpoint has no tensor '{name}'.");

    /// <summary>
    /// Loads a tensor after checking its shape against what the model expects. An F8_E4M3 tensor is
    /// dequantised with its <c>_scale_inv</c> blocks (<paramref name="fp8"/>, from config.json) on
    /// <paramref name="device"/> in float32 (float64 for a float64 model), then converted to <paramref name="dtype"/>.
    /// </summary>
    public Tensor Load(string name, long[] expectedShape, ScalarType dtype, Device device, Fp8BlockQuantization? fp8 = null)
    {
        var (file, info) = Expected(name, expectedShape);
        if (info.Dtype != Float8E4M3.SafetensorsCode) return file.Load(name, dtype, device);
        if (fp8 is null)
            throw new CheckpointFormatException(
                $"{Path.GetFileName(file.Path)}: tensor '{name}' is {info.Dtype} but config.json has no quantization_config; an FP8 checkpoint declares {Fp8BlockQuantization.Supported}.");
        var scaleName = name + Fp8BlockQuantization.ScaleSuffix;
        if (!Contains(scaleName))
            throw new CheckpointFormatException($"{Directory}: FP8 tensor '{name}' has no '{scaleName}', the block scales it is dequantised with.");
        var scaleInfo = Info(scaleName);
        var blocks = Fp8BlockWeights.ScaleShape(info.Shape, fp8);
        if (!scaleInfo.Shape.SequenceEqual(blocks))
            throw new CheckpointFormatException(
                $"{Path.GetFileName(_fileOfTensor[scaleName].Path)}: '{scaleName}' has shape [{string.Join(", ", scaleInfo.Shape)}] but [{string.Join(", ", info.Shape)}] in {fp8.BlockRows}×{fp8.BlockColumns} blocks needs [{string.Join(", ", blocks)}].");
        using var scope = NewDisposeScope();
        // The bytes travel to the device (half of bf16's transfer) and are decoded there.
        using var bytes = file.LoadFloat8Bytes(name).to(device);
        using var scales = _fileOfTensor[scaleName].Load(scaleName, ScalarType.Float32, device);
        var weight = Fp8BlockWeights.Dequantize(bytes, scales, fp8, dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        if (!isfinite(weight).all().item<bool>())
            throw new CheckpointFormatException($"{Path.GetFileName(file.Path)}: FP8 tensor '{name}' holds NaN codes (0x7F/0xFF) or scales that overflow; the file is corrupt.");
        return weight.to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Fills every target from the checkpoint tensor of its name (the target's shape, dtype and device)
    /// in the order the bytes lie in the files, so that a cold disk is read front to back, while
    /// <see cref="CheckpointReadAhead"/> reads the bytes of the next tensors; <paramref name="progress"/>
    /// hears after each tensor. Every name and shape is checked before the first byte is read.
    /// </summary>
    public void LoadInto(IReadOnlyList<(string Name, Tensor Target)> targets, Fp8BlockQuantization? fp8 = null,
        IProgress<LoadProgress>? progress = null, TimeProvider? time = null, CheckpointReadAhead.Settings? readAhead = null)
    {
        ArgumentNullException.ThrowIfNull(targets);
        time ??= TimeProvider.System;
        var started = time.GetTimestamp();
        var fileOrder = _files.Select((file, index) => (file, index)).ToDictionary(p => p.file, p => p.index);
        var plan = targets.Select(t => (t.Name, t.Target, Ranges: Ranges(t.Name, t.Target, fp8)))
            .OrderBy(p => fileOrder[_fileOfTensor[p.Name]]).ThenBy(p => p.Ranges[0].Offset)
            .ToList();
        var total = plan.Sum(p => p.Ranges.Sum(r => r.Length));
        using var readers = new CheckpointReadAhead(plan.SelectMany(p => p.Ranges), readAhead);
        using var staging = new HostStaging(plan.Count > 0 ? plan[0].Target.device : CPU);
        long done = 0;
        progress?.Report(new LoadProgress(0, plan.Count, 0, total, time.GetElapsedTime(started)));
        for (var i = 0; i < plan.Count; i++)
        {
            var (name, target, ranges) = plan[i];
            var file = _fileOfTensor[name];
            if (file.Tensors[name].Dtype == Float8E4M3.SafetensorsCode && target.dtype == ScalarType.Byte)
            {
                // FP8-resident: the bytes as they are; the block scales are a target of their own.
                using var raw = file.LoadFloat8Bytes(name);
                if (HasNaNCode(raw))
                    throw new CheckpointFormatException($"{Path.GetFileName(file.Path)}: FP8 tensor '{name}' holds NaN codes (0x7F/0xFF); the file is corrupt.");
                target.copy_(raw);
            }
            else if (file.Tensors[name].Dtype == Float8E4M3.SafetensorsCode)
            {
                using var weight = Load(name, target.shape, target.dtype, target.device, fp8);
                target.copy_(weight);
            }
            else
            {
                file.CopyTo(name, target, staging);
            }
            var bytes = ranges.Sum(r => r.Length);
            done += bytes;
            readers.Advance(bytes);
            progress?.Report(new LoadProgress(i + 1, plan.Count, done, total, time.GetElapsedTime(started)));
        }
    }

    /// <summary>
    /// The bytes a tensor loads from: its own, and an FP8 tensor's block scales when it is dequantised
    /// (an FP8-resident target, uint8, loads its scales as a target of their own).
    /// </summary>
    private CheckpointReadAhead.FileRange[] Ranges(string name, Tensor target, Fp8BlockQuantization? fp8)
    {
        var (file, info) = Expected(name, target.shape);
        var scaleName = name + Fp8BlockQuantization.ScaleSuffix;
        return info.Dtype == Float8E4M3.SafetensorsCode && fp8 is not null && target.dtype != ScalarType.Byte && _fileOfTensor.TryGetValue(scaleName, out var scaleFile)
            ? [file.RangeOf(info), scaleFile.RangeOf(scaleFile.Tensors[scaleName])]
            : [file.RangeOf(info)];
    }

    /// <summary>True when an FP8 tensor holds one of E4M3's two NaN codes.</summary>
    private static bool HasNaNCode(Tensor bytes)
    {
        using var scope = NewDisposeScope();
        using var nan = 0x7F.ToScalar();
        using var negativeNaN = 0xFF.ToScalar();
        return bytes.eq(nan).logical_or_(bytes.eq(negativeNaN)).any().item<bool>();
    }

    private (SafetensorsFile File, SafetensorsTensorInfo Info) Expected(string name, long[] expectedShape)
    {
        if (!_fileOfTensor.TryGetValue(name, out var file))
            throw new CheckpointFormatException($"{Directory}: the checkpoint has no tensor '{name}', which the model needs.");
        var info = file.Tensors[name];
        if (!info.Shape.SequenceEqual(expectedShape))
            throw new CheckpointFormatException(
                $"{Path.GetFileName(file.Path)}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}] but config.json implies [{string.Join(", ", expectedShape)}].");
        return (file, info);
    }

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }
}
