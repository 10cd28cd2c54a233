using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>Tensor.TotalCount is process-wide, so this runs with no other test in parallel.</summary>
[Collection(nameof(LeakTests))]
public sealed class LeakTests
{
    [Fact]
    public void Repeated_generation_leaves_live_tensor_count_flat()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.Float32, CPU);
        AssertFlat(model);
    }

    [Fact]
    public void Repeated_generation_on_a_sharded_group_leaves_live_tensor_count_flat()
    {
        var config = DeepSeek.Model.Configuration.DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        using var group = ShardedGroup.Load(Fixtures.V3Tiny, DeepSeek.Model.Parallelism.ExpertPlacement.Initial(config, 3, 2), ScalarType.Float32);
        AssertFlat(group.Leader);
    }

    [Fact]
    public void Repeated_generation_with_int4_weights_leaves_live_tensor_count_flat()
    {
        using var model = DeepSeekForCausalLM.Load(Fixtures.Dir(Fixtures.V3Tiny), ScalarType.BFloat16, CPU,
            loadedPasses: DeepSeek.Model.Quantization.Int4Quantization.Pass(DeepSeek.Model.Quantization.WeightQuantization.Int4(16), ScalarType.BFloat16, CPU));
        AssertFlat(model);
    }

    [Fact]
    public void A_load_that_fails_midway_stops_its_readers_and_leaves_no_tensor()
    {
        var copy = FixtureCopies.CopyFixture(Fixtures.V2LiteTiny);
        try
        {
            // The first tensor in the file holds NaN: the load fails at its first copy, while the readers wait at the window.
            var path = Path.Combine(copy, SafetensorsCheckpoint.SingleFileName);
            var entries = SafetensorsWriter.ReadAll(path);
            var nan = BitConverter.GetBytes(float.NaN);
            entries[0] = entries[0] with { Data = Enumerable.Range(0, entries[0].Data.Length).Select(i => nan[i % 4]).ToArray() };
            SafetensorsWriter.Write(path, entries);

            GC.Collect();
            GC.WaitForPendingFinalizers();
            var totalBefore = Tensor.TotalCount;
            using (var checkpoint = SafetensorsCheckpoint.Open(copy))
            {
                var targets = checkpoint.TensorNames.Select(name => (name, zeros(checkpoint.Info(name).Shape, ScalarType.Float32))).ToList();
                var error = Assert.Throws<CheckpointFormatException>(() =>
                    checkpoint.LoadInto(targets, readAhead: new CheckpointReadAhead.Settings(Readers: 2, WindowBytes: 4096, ChunkBytes: 4096)));
                Assert.Contains(entries[0].Name, error.Message, StringComparison.Ordinal);
                // The load joined its readers before it threw; the kernel removes a joined thread's entry
                // from /proc a moment after its managed side has ended, so wait for that, within a budget.
                DeepSeek.Testing.Eventually.Holds(() => ReadAheadThreads().Length == 0, TimeSpan.FromSeconds(30),
                    "the read-ahead threads to leave /proc/self/task");
                foreach (var (_, target) in targets) target.Dispose();
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.Equal(totalBefore, Tensor.TotalCount);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    /// <summary>Threads of this process named as read-ahead readers (Linux shows a thread's name, cut to 15 bytes, in its comm).</summary>
    private static string[] ReadAheadThreads() =>
        Directory.GetDirectories("/proc/self/task")
            .Select(task => { try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); } catch (IOException) { return ""; } })
            .Where(name => name.StartsWith("checkpoint read", StringComparison.Ordinal))
            .ToArray();

    private static void AssertFlat(DeepSeekForCausalLM model)
    {
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[2].InputIds;
        void Run() => GreedyDecoding.Cached(model, prompt, 12);

        Run();
        // Finalizers of tensors other tests left to the GC would move the process-wide count.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var totalBefore = Tensor.TotalCount;
        for (var i = 0; i < 10; i++) Run();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(liveBefore, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(totalBefore, Tensor.TotalCount);
    }
}
