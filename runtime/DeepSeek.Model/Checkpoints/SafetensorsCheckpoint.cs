using System.Text.Json;
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

    /// <summary>Loads a tensor after checking its shape against what the model expects.</summary>
    public Tensor Load(string name, long[] expectedShape, ScalarType dtype, Device device)
    {
        if (!_fileOfTensor.TryGetValue(name, out var file))
            throw new CheckpointFormatException($"{Directory}: the checkpoint has no tensor '{name}', which the model needs.");
        var info = file.Tensors[name];
        if (!info.Shape.SequenceEqual(expectedShape))
            throw new CheckpointFormatException(
                $"{Path.GetFileName(file.Path)}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}] but config.json implies [{string.Join(", ", expectedShape)}].");
        return file.Load(name, dtype, device);
    }

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }
}
