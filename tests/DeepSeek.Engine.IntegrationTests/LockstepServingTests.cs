using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;
using static TorchSharp.torch;

namespace DeepSeek.Engine.IntegrationTests;

/// <summary>
/// Data-parallel attention's lockstep shape under the real engine: three engines in this process, each
/// one rank of a group of threads that behaves as NCCL's does, each with its own scheduler and KV cache
/// and a third of the routed experts. Each serves its own concurrent requests while its peers serve
/// theirs; an engine with no requests takes idle turns and answers its peers' exchanges.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class LockstepServingTests
{
    private const int Ranks = 3;

    [Fact]
    public async Task Every_rank_serves_its_own_concurrent_requests_with_the_reference_tokens_and_an_idle_rank_answers_its_peers()
    {
        var checkpoint = ReferenceCheckpoints.V2LiteTiny;
        var directory = ReferenceCheckpoints.Dir(checkpoint);
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(directory), Ranks, 0);
        var group = new ThreadProcessGroup(Ranks, generation: 1, Patience);
        var transports = Enumerable.Range(0, Ranks).Select(_ => new LockstepExpertTransport(Patience)).ToList();
        for (var rank = 0; rank < Ranks; rank++) transports[rank].Attach(group.Members[rank], CPU);
        var engines = new List<InferenceEngine>();
        try
        {
            // All three load at once: a rank's first forward waits in its agreement for the others.
            engines.AddRange(await Task.WhenAll(Enumerable.Range(0, Ranks).Select(rank => InferenceEngine.StartAsync(
                new EngineOptions { ServedModelName = $"rank-{rank}", KvCacheBlocks = 128 },
                () => ShardedModel(directory, placement, rank, transports[rank]), Decoder(checkpoint), new EngineMetrics($"rank-{rank}")))));

            var prompts = ReferenceCheckpoints.Prompts(checkpoint);
            // Ranks 0 and 1 each get every prompt at once; rank 2 gets none.
            var handles = Enumerable.Range(0, Ranks - 1)
                .SelectMany(rank => prompts.Select(p => (Prompt: p, Handle: engines[rank].Submit(p.InputIds, Greedy(p.ReliableGreedy.Length))))).ToList();
            var results = await Task.WhenAll(handles.Select(h => CollectAsync(h.Handle)));

            for (var i = 0; i < handles.Count; i++)
            {
                var events = results[i];
                Assert.True(events[^1].FinishReason == FinishReason.Length, $"ended {events[^1].FinishReason} ({events[^1].FailureReason}: {events[^1].ErrorMessage})");
                Assert.Equal(handles[i].Prompt.ReliableGreedy, Tokens(events));
            }
            Assert.True(transports[2].RowsServed > 0, "the rank without requests computed no rows for its peers");
            Assert.True(transports[0].RowsServed > 0 && transports[1].RowsServed > 0, "the busy ranks computed no rows for each other");
            Assert.All(engines, e => Assert.Equal(128, e.NumKvBlocks));
            // Decode steps (all ranks decoding or idle) exchanged at a fixed capacity, the others with split sizes.
            Assert.All(transports, t => Assert.True(t.FixedForwards > 0, "no forward exchanged at a fixed capacity"));
        }
        finally
        {
            foreach (var engine in engines) await engine.DisposeAsync();
            transports.ForEach(t => t.Dispose());
        }
        // The first engine to stop left the group, so the others stopped without waiting out a deadline for it.
        Assert.All(transports, t => Assert.Null(t.Group));
    }

    private static DeepSeekForCausalLM ShardedModel(string directory, ExpertPlacement placement, int rank, LockstepExpertTransport transport)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        var model = DeepSeekForCausalLM.Build(DeepSeekConfig.Load(directory), ScalarType.Float64);
        ExpertParallelism.Apply(model, placement, rank, transport);
        model.Materialise(checkpoint, CPU);
        return model;
    }
}
