using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// What a checkpoint holds, computed from config.json and the safetensors headers alone (no weights
/// read): parameter counts, bytes per stored dtype, and the parameters one token activates (every
/// tensor except the routed experts it is not sent to).
/// </summary>
public sealed partial record ModelInventory(
    string Architecture,
    long Parameters,
    IReadOnlyDictionary<string, long> BytesPerDtype,
    int Layers,
    int DenseLayers,
    int MoeLayers,
    int RoutedExperts,
    int SharedExperts,
    int ExpertsPerToken,
    long ParametersPerRoutedExpert,
    long ActiveParametersPerToken,
    long ParametersOutsideModelLayers)
{
    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerIndex();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.")]
    private static partial Regex RoutedExpert();

    public static ModelInventory From(DeepSeekConfig config, IEnumerable<SafetensorsTensorInfo> tensors)
    {
        long total = 0, outside = 0;
        var bytes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var routedPerLayer = new Dictionary<int, long>();
        var expertsPerLayer = new Dictionary<int, HashSet<int>>();
        foreach (var tensor in tensors)
        {
            bytes[tensor.Dtype] = bytes.GetValueOrDefault(tensor.Dtype) + tensor.ByteLength;
            // An FP8 weight's block scales are bytes of the checkpoint, not parameters of the model.
            if (tensor.Name.EndsWith(Fp8BlockQuantization.ScaleSuffix, StringComparison.Ordinal)) continue;
            total += tensor.ElementCount;
            var layer = LayerIndex().Match(tensor.Name);
            if (layer.Success && int.Parse(layer.Groups[1].Value, CultureInfo.InvariantCulture) >= config.NumHiddenLayers)
            {
                // Multi-token-prediction layers that DeepSeek-V3 ships but inference does not run.
                outside += tensor.ElementCount;
                continue;
            }
            var expert = RoutedExpert().Match(tensor.Name);
            if (!expert.Success) continue;
            var index = int.Parse(expert.Groups[1].Value, CultureInfo.InvariantCulture);
            routedPerLayer[index] = routedPerLayer.GetValueOrDefault(index) + tensor.ElementCount;
            if (!expertsPerLayer.TryGetValue(index, out var set)) expertsPerLayer[index] = set = [];
            set.Add(int.Parse(expert.Groups[2].Value, CultureInfo.InvariantCulture));
        }
        var moeLayers = Enumerable.Range(0, config.NumHiddenLayers).Count(config.IsMoeLayer);
        var perExpert = routedPerLayer.Count == 0 ? 0 : routedPerLayer.Max(p => p.Value / expertsPerLayer[p.Key].Count);
        var inactive = routedPerLayer.Sum(p => p.Value / expertsPerLayer[p.Key].Count * (expertsPerLayer[p.Key].Count - config.NumExpertsPerTok));
        return new ModelInventory(
            config.ModelType, total, bytes, config.NumHiddenLayers, config.NumHiddenLayers - moeLayers, moeLayers,
            config.NRoutedExperts, config.NSharedExperts, config.NumExpertsPerTok, perExpert,
            total - outside - inactive, outside);
    }
}
