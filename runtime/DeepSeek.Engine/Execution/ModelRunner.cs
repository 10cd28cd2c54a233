using DeepSeek.Engine.Scheduling;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Execution;

/// <summary>
/// Runs engine steps through the model. Owns the model and one <see cref="MlaKvCache"/> of
/// <c>numBlocks × blockSize</c> slots, whose slot numbers are the block pool's (slot = block × size +
/// offset). Create, use and dispose it on the engine thread only.
/// </summary>
public sealed class ModelRunner : IDisposable
{
    private readonly MlaKvCache _cache;

    public ModelRunner(DeepSeekForCausalLM model, int numBlocks, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(numBlocks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        Model = model;
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        _cache = model.CreateCache((long)numBlocks * blockSize);
    }

    public DeepSeekForCausalLM Model { get; }

    public int NumBlocks { get; }

    public int BlockSize { get; }

    /// <summary>Bytes of one KV block over all layers: what the pool sizing divides memory by.</summary>
    public static long BytesPerBlock(DeepSeek.Model.Configuration.DeepSeekConfig config, ScalarType dtype, int blockSize) =>
        (long)config.NumHiddenLayers * (config.KvLoraRank + config.QkRopeHeadDim) * blockSize * ElementSize(dtype);

    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a model dtype."),
    };

    /// <summary>Runs one step and returns the last-token logits of its sampling sequences on the host.</summary>
    public StepLogits Run(ForwardBatchArrays arrays)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        var spans = arrays.Sequences.Select(s => new SequenceSpan(s.TokenStart, s.TokenCount, s.ContextSlots)).ToArray();
        var batch = new ForwardBatch(arrays.TokenIds, arrays.Positions, arrays.SlotMapping, spans);

        var rowOfSequence = new int[arrays.Sequences.Count];
        var sampling = new List<long>(arrays.Sequences.Count);
        for (var s = 0; s < rowOfSequence.Length; s++)
        {
            rowOfSequence[s] = arrays.Sequences[s].SamplesToken ? sampling.Count : -1;
            if (arrays.Sequences[s].SamplesToken) sampling.Add(s);
        }

        using var scope = NewDisposeScope();
        using var output = Model.Forward(batch, _cache);
        IReadOnlyList<ExpertLoad> loads = output.ExpertLoads;
        if (sampling.Count == 0) return new StepLogits([], Model.Config.VocabSize, rowOfSequence, loads);

        // Rows of the sampling sequences only, then the one device→host copy of the step.
        var rows = sampling.Count == rowOfSequence.Length
            ? output.Logits
            : output.Logits.index_select(0, tensor(sampling.ToArray(), device: Model.Device));
        var host = rows.to(ScalarType.Float32, CPU).contiguous();
        return new StepLogits(host.data<float>().ToArray(), Model.Config.VocabSize, rowOfSequence, loads);
    }

    /// <summary>
    /// The mean of the final hidden states over <paramref name="tokenIds"/>, L2-normalised. Runs in a
    /// cache of its own, freed at once, so the serving pool and the prefix cache are untouched.
    /// </summary>
    public float[] Embed(IReadOnlyList<int> tokenIds)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        using var scope = NewDisposeScope();
        using var cache = Model.CreateCache(tokenIds.Count);
        var batch = ForwardBatch.Contiguous(tokenIds.Select(id => (long)id).ToArray(), 0, LogitsSelection.AllTokens);
        using var hidden = Model.FinalHiddenStates(batch, cache);
        var mean = hidden.to(ScalarType.Float32).mean([0L]);
        var unit = nn.functional.normalize(mean.unsqueeze(0), p: 2, dim: 1).squeeze(0);
        return unit.to(CPU).contiguous().data<float>().ToArray();
    }

    public void Dispose()
    {
        _cache.Dispose();
        Model.Dispose();
    }
}
