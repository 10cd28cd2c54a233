using DeepSeek.Model.Experts;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A placement on the expert wire: the leader (data-parallel: rank 0) decides it and sends it whole, so
/// ranks never decide; with data-parallel attention each rank's observed load travels the other way.
/// </summary>
public static class PlacementMessages
{
    public static PreparePlacementRequest ToRequest(ExpertPlacement placement)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var request = new PreparePlacementRequest { PlacementVersion = placement.Version, WorldSize = placement.RankCount };
        foreach (var layer in placement.Layers)
        {
            var message = new PlacedLayer { Layer = layer.LayerIndex, ExpertCount = layer.ExpertCount };
            for (var rank = 0; rank < layer.RankCount; rank++)
            {
                var held = new ExpertSet();
                held.Experts.AddRange(layer.ExpertsOn(rank));
                message.Ranks.Add(held);
            }
            request.Layers.Add(message);
        }
        return request;
    }

    /// <exception cref="ArgumentException">The message is not a placement of <paramref name="worldSize"/> ranks over exactly <paramref name="moeLayers"/> (each with <paramref name="expertCount"/> experts, every expert held somewhere).</exception>
    public static ExpertPlacement FromRequest(PreparePlacementRequest request, int worldSize, IReadOnlyCollection<int> moeLayers, int expertCount)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(moeLayers);
        if (request.WorldSize != worldSize) throw new ArgumentException($"The placement is for {request.WorldSize} ranks; this group has {worldSize}.");
        if (request.PlacementVersion < ExpertPlacement.InitialVersion) throw new ArgumentException($"Placement versions start at {ExpertPlacement.InitialVersion}; got {request.PlacementVersion}.");
        var layers = request.Layers.Select(l => l.Layer).ToList();
        if (layers.Count != layers.Distinct().Count() || !layers.Order().SequenceEqual(moeLayers.Order()))
            throw new ArgumentException($"The placement covers layers [{string.Join(", ", layers)}]; the model's MoE layers are [{string.Join(", ", moeLayers.Order())}], each once.");
        return new ExpertPlacement(worldSize, [.. request.Layers.Select(layer =>
        {
            if (layer.ExpertCount != expertCount) throw new ArgumentException($"Layer {layer.Layer} has {expertCount} experts, the placement says {layer.ExpertCount}.");
            if (layer.Ranks.Count != worldSize) throw new ArgumentException($"Layer {layer.Layer} places experts on {layer.Ranks.Count} ranks, not {worldSize}.");
            return new LayerPlacement(layer.Layer, expertCount, [.. layer.Ranks.Select(r => (IReadOnlyList<int>)[.. r.Experts])]);
        })]) { Version = request.PlacementVersion };
    }

    public static ExpertLoadReply ToReply(IReadOnlyList<ExpertLoad> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        var reply = new ExpertLoadReply();
        foreach (var layer in load)
        {
            var message = new LayerLoad { Layer = layer.LayerIndex };
            message.Picks.AddRange(layer.TokensPerExpert);
            reply.Layers.Add(message);
        }
        return reply;
    }

    /// <summary>A peer's observed load, checked: it is input from another process.</summary>
    /// <exception cref="FormatException">Not one non-negative count per expert for exactly <paramref name="moeLayers"/> (or nothing at all).</exception>
    public static IReadOnlyList<ExpertLoad> FromReply(ExpertLoadReply reply, IReadOnlyCollection<int> moeLayers, int expertCount)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(moeLayers);
        if (reply.Layers.Count == 0) return [];
        var layers = reply.Layers.Select(l => l.Layer).ToList();
        if (layers.Count != layers.Distinct().Count() || !layers.Order().SequenceEqual(moeLayers.Order()))
            throw new FormatException($"The load covers layers [{string.Join(", ", layers)}]; the model's MoE layers are [{string.Join(", ", moeLayers.Order())}], each once.");
        return [.. reply.Layers.OrderBy(l => l.Layer).Select(layer => layer.Picks.Count == expertCount && layer.Picks.All(p => p >= 0)
            ? new ExpertLoad(layer.Layer, [.. layer.Picks])
            : throw new FormatException($"Layer {layer.Layer}'s load must be {expertCount} non-negative counts, got {layer.Picks.Count}."))];
    }
}
