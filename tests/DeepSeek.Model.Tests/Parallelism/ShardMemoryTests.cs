using System.Globalization;
using System.Text;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Parallelism;

/// <summary>
/// Parameter bytes each rank holds for group sizes 1–4: the fixtures materialised from their
/// memory-mapped checkpoints, and DeepSeek-V2-Lite's shape (shortened to 2 layers, and whole) as
/// built and sharded (declared on the meta device, which is what materialising allocates, as the
/// fixture rows check). Prints the table docs/benchmarks.md records:
/// <c>dotnet test tests/DeepSeek.Model.Tests --filter ShardMemoryTests --logger "console;verbosity=detailed"</c>.
/// </summary>
public sealed class ShardMemoryTests(ITestOutputHelper output)
{
    private const int MaxRanks = 4;

    [Fact]
    public void Parameter_bytes_per_rank_are_the_non_expert_weights_plus_the_ranks_experts_and_fall_with_the_group_size()
    {
        var table = new StringBuilder();
        table.AppendLine("| model | dtype | ranks | bytes per rank (rank 0 … N−1) | largest rank / one process |");
        table.AppendLine("| --- | --- | --- | --- | --- |");
        foreach (var name in new[] { Fixtures.V3Tiny, Fixtures.V2LiteTiny })
        {
            var directory = Fixtures.Dir(name);
            using var checkpoint = SafetensorsCheckpoint.Open(directory);
            Measure(table, name, DeepSeekConfig.Load(directory), ScalarType.Float32, model => model.Materialise(checkpoint, CPU));
        }
        var v2Lite = DeepSeekConfig.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "V2LiteShape.json")));
        Measure(table, "DeepSeek-V2-Lite shape, 2 layers", v2Lite with { NumHiddenLayers = 2 }, ScalarType.BFloat16, materialise: null);
        Measure(table, "DeepSeek-V2-Lite shape, 27 layers", v2Lite, ScalarType.BFloat16, materialise: null);
        output.WriteLine(table.ToString());
    }

    private static void Measure(StringBuilder table, string name, DeepSeekConfig config, ScalarType dtype, Action<DeepSeekForCausalLM>? materialise)
    {
        var element = dtype == ScalarType.BFloat16 ? 2L : 4L;
        var moeLayers = Enumerable.Range(0, config.NumHiddenLayers).Count(config.IsMoeLayer);
        var bytesPerExpert = 3L * config.HiddenSize * config.MoeIntermediateSize * element;
        long? single = null;
        var previousLargest = long.MaxValue;
        for (var ranks = 1; ranks <= MaxRanks; ranks++)
        {
            var placement = ExpertPlacement.Initial(config, ranks, 0);
            var group = new InProcessExpertGroup(ranks);
            var perRank = new long[ranks];
            long nonExpert = 0;
            for (var rank = 0; rank < ranks; rank++)
            {
                using var model = DeepSeekForCausalLM.Build(config, dtype);
                var whole = model.ParameterBytes;
                ExpertParallelism.Apply(model, placement, rank, group.TransportFor(rank));
                materialise?.Invoke(model);
                perRank[rank] = model.ParameterBytes;
                Assert.Equal(materialise is not null, model.IsMaterialised);
                var held = placement.Layers.Sum(l => (long)l.ExpertsOn(rank).Count);
                nonExpert = whole - (moeLayers * (long)config.NRoutedExperts * bytesPerExpert);
                Assert.Equal(nonExpert + (held * bytesPerExpert), perRank[rank]);
            }
            single ??= perRank[0];
            Assert.True(perRank.Max() < previousLargest || ranks == 1, $"{name}: the largest rank did not shrink at {ranks} ranks");
            previousLargest = perRank.Max();
            table.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {dtype.ToString().ToLowerInvariant()} | {ranks} | {string.Join(" · ", perRank.Select(Size))} | {perRank.Max() / (double)single:0.00} (non-expert {Size(nonExpert)}) |");
        }
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
    };
}
