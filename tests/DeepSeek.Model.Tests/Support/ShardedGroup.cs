using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Support;

/// <summary>
/// One fixture loaded as an expert-parallel group of models in this process: each rank built, sharded
/// by the pass, materialised from the memory-mapped checkpoint and joined to an in-process transport.
/// Rank 0 (the leader) runs the forwards.
/// </summary>
public sealed class ShardedGroup : IDisposable
{
    private ShardedGroup(InProcessExpertGroup transport, IReadOnlyList<DeepSeekForCausalLM> ranks) => (Transport, Ranks) = (transport, ranks);

    public InProcessExpertGroup Transport { get; }

    public IReadOnlyList<DeepSeekForCausalLM> Ranks { get; }

    public DeepSeekForCausalLM Leader => Ranks[0];

    public static ShardedGroup Load(string fixture, ExpertPlacement placement, ScalarType dtype)
    {
        var directory = Fixtures.Dir(fixture);
        var config = DeepSeekConfig.Load(directory);
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        var transport = new InProcessExpertGroup(placement.RankCount);
        var ranks = new List<DeepSeekForCausalLM>();
        for (var rank = 0; rank < placement.RankCount; rank++)
        {
            var model = DeepSeekForCausalLM.Build(config, dtype);
            ExpertParallelism.Apply(model, placement, rank, transport.TransportFor(rank));
            model.Materialise(checkpoint, CPU);
            transport.Join(rank, model);
            ranks.Add(model);
        }
        return new ShardedGroup(transport, ranks);
    }

    public void Dispose()
    {
        foreach (var rank in Ranks) rank.Dispose();
    }
}
