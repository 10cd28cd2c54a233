using System.Text.Json;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Checkpoints;

public sealed class CheckpointLoadingTests
{
    [Theory]
    [InlineData(Fixtures.V3Tiny)]
    [InlineData(Fixtures.V2LiteTiny)]
    public void Sharded_checkpoint_gives_identical_logits(string name)
    {
        var sharded = FixtureCopies.CopyFixture(name);
        try
        {
            var single = Path.Combine(sharded, SafetensorsCheckpoint.SingleFileName);
            var entries = SafetensorsWriter.ReadAll(single);
            File.Delete(single);
            var half = entries.Count / 2;
            string[] shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
            SafetensorsWriter.Write(Path.Combine(sharded, shards[0]), entries.Take(half));
            SafetensorsWriter.Write(Path.Combine(sharded, shards[1]), entries.Skip(half));
            var index = new { metadata = new { total_size = entries.Sum(e => e.Data.Length) }, weight_map = entries.Select((e, i) => (e.Name, Shard: shards[i < half ? 0 : 1])).ToDictionary(p => p.Name, p => p.Shard) };
            File.WriteAllText(Path.Combine(sharded, SafetensorsCheckpoint.IndexFileName), JsonSerializer.Serialize(index));

            var prompt = Fixtures.LoadReference(name).Prompts[1].InputIds;
            using var fromSingle = DeepSeekForCausalLM.Load(Fixtures.Dir(name), ScalarType.Float32, CPU);
            using var fromShards = DeepSeekForCausalLM.Load(sharded, ScalarType.Float32, CPU);
            using var cacheA = fromSingle.CreateCache(prompt.Length);
            using var cacheB = fromShards.CreateCache(prompt.Length);
            using var a = fromSingle.Forward(ForwardBatch.Contiguous(prompt, 0, LogitsSelection.AllTokens), cacheA);
            using var b = fromShards.Forward(ForwardBatch.Contiguous(prompt, 0, LogitsSelection.AllTokens), cacheB);
            Assert.Equal(a.Logits.data<float>().ToArray(), b.Logits.data<float>().ToArray());
        }
        finally
        {
            Directory.Delete(sharded, recursive: true);
        }
    }

    [Fact]
    public void Truncated_fixture_fails_to_load_with_clear_error()
    {
        var copy = FixtureCopies.CopyFixture(Fixtures.V3Tiny);
        try
        {
            var path = Path.Combine(copy, SafetensorsCheckpoint.SingleFileName);
            using (var stream = new FileStream(path, FileMode.Open)) stream.SetLength(stream.Length / 2);
            var error = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(copy, ScalarType.Float32, CPU));
            Assert.Contains("model.safetensors", error.Message, StringComparison.Ordinal);
            Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public void Missing_and_misshapen_tensors_are_named()
    {
        var copy = FixtureCopies.CopyFixture(Fixtures.V2LiteTiny);
        try
        {
            var path = Path.Combine(copy, SafetensorsCheckpoint.SingleFileName);
            var entries = SafetensorsWriter.ReadAll(path);
            SafetensorsWriter.Write(path, entries.Where(e => e.Name != "model.layers.1.mlp.experts.3.up_proj.weight"));
            var missing = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(copy, ScalarType.Float32, CPU));
            Assert.Contains("model.layers.1.mlp.experts.3.up_proj.weight", missing.Message, StringComparison.Ordinal);

            // Same bytes, transposed shape: the header is consistent but the model expects [128, 16].
            SafetensorsWriter.Write(path, entries.Select(e => e.Name == "model.layers.0.self_attn.kv_b_proj.weight" ? e with { Shape = [16, 128] } : e));
            var misshapen = Assert.Throws<CheckpointFormatException>(() => DeepSeekForCausalLM.Load(copy, ScalarType.Float32, CPU));
            Assert.Contains("model.layers.0.self_attn.kv_b_proj.weight", misshapen.Message, StringComparison.Ordinal);
            Assert.Contains("[16, 128]", misshapen.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Fact]
    public void Index_naming_a_missing_shard_fails_clearly()
    {
        var copy = FixtureCopies.CopyFixture(Fixtures.V3Tiny);
        try
        {
            File.WriteAllText(Path.Combine(copy, SafetensorsCheckpoint.IndexFileName), """{"weight_map":{"lm_head.weight":"model-00009-of-00009.safetensors"}}""");
            var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsCheckpoint.Open(copy));
            Assert.Contains("model-00009-of-00009.safetensors", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    /// <summary>A clock that moves a second each time it is read: every report of a load is a second after the one before.</summary>
    private sealed class SteppingClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks += TimeSpan.TicksPerSecond;
    }

    [Fact]
    public void Load_reports_progress_from_nothing_to_every_tensor_and_byte_of_the_checkpoint()
    {
        var directory = Fixtures.Dir(Fixtures.V2LiteTiny);
        long checkpointBytes;
        int checkpointTensors;
        using (var checkpoint = SafetensorsCheckpoint.Open(directory))
        {
            checkpointTensors = checkpoint.TensorNames.Count();
            checkpointBytes = checkpoint.TensorNames.Sum(name => checkpoint.Info(name).ByteLength);
        }

        var reports = new List<LoadProgress>();
        using (var checkpoint = SafetensorsCheckpoint.Open(directory))
        using (var model = DeepSeekForCausalLM.Build(DeepSeek.Model.Configuration.DeepSeekConfig.Load(directory), ScalarType.Float32))
            model.Materialise(checkpoint, CPU, new Recorder(reports), new SteppingClock());

        Assert.Equal(checkpointTensors + 1, reports.Count);
        Assert.Equal(new LoadProgress(0, checkpointTensors, 0, checkpointBytes, TimeSpan.FromSeconds(1)), reports[0]);
        Assert.Equal(new LoadProgress(checkpointTensors, checkpointTensors, checkpointBytes, checkpointBytes, TimeSpan.FromSeconds(checkpointTensors + 1)), reports[^1]);
        for (var i = 1; i < reports.Count; i++)
        {
            Assert.Equal(i, reports[i].TensorsDone);
            Assert.True(reports[i].BytesDone > reports[i - 1].BytesDone);
        }

        var lines = new List<string>();
        using (DeepSeekForCausalLM.Load(directory, ScalarType.Float32, CPU, log: lines.Add, time: new SteppingClock()))
        {
            Assert.Equal(LoadProgressLog.Start(reports[0]), lines[0]);
            Assert.Equal(LoadProgressLog.Summary(reports[^1]), lines[^1]);
            // One line every two reports of a second each: throttled, not one per tensor.
            Assert.Equal(2 + (checkpointTensors - 1) / 2, lines.Count);
            Assert.All(lines.Skip(1).SkipLast(1), line => Assert.StartsWith("Loading weights: ", line, StringComparison.Ordinal));
        }
    }

    private sealed class Recorder(List<LoadProgress> reports) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) => reports.Add(value);
    }
}

