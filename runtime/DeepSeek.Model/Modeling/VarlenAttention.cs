using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// A step's <see cref="VarlenLayout"/> on the device, with the kernel that attends over it: what every
/// layer's expanded attention uses instead of the padded view of <see cref="AttentionMetadata"/> when the
/// model has a varlen kernel (FlashAttention on CUDA in bf16/fp16).
/// </summary>
public sealed class VarlenAttention : IDisposable
{
    private readonly VarlenAttentionKernel _kernel;

    internal VarlenAttention(VarlenLayout layout, VarlenAttentionKernel kernel, Device device)
    {
        Layout = layout;
        _kernel = kernel;
        using var scope = NewDisposeScope();
        CumulativeQueries = tensor(layout.CumulativeQueries, device: device).MoveToOuterDisposeScope();
        CumulativeContexts = tensor(layout.CumulativeContexts, device: device).MoveToOuterDisposeScope();
        ContextSlots = tensor(layout.ContextSlots, device: device).MoveToOuterDisposeScope();
        QueryRows = layout.QueryRows is { } rows ? tensor(rows, device: device).MoveToOuterDisposeScope() : null;
        UnpackRows = layout.UnpackRows is { } unpack ? tensor(unpack, device: device).MoveToOuterDisposeScope() : null;
    }

    public VarlenLayout Layout { get; }

    /// <summary>int32 <c>[S+1]</c> (<see cref="VarlenLayout.CumulativeQueries"/>).</summary>
    public Tensor CumulativeQueries { get; }

    /// <summary>int32 <c>[S+1]</c> (<see cref="VarlenLayout.CumulativeContexts"/>).</summary>
    public Tensor CumulativeContexts { get; }

    /// <summary>int64 <c>[Σ contexts]</c>: the cache slots to gather, packed.</summary>
    public Tensor ContextSlots { get; }

    /// <summary><c>[T]</c>: batch row of each packed query; null when the batch is packed already.</summary>
    public Tensor? QueryRows { get; }

    /// <summary><c>[T]</c>: packed row of each batch row; null with <see cref="QueryRows"/>.</summary>
    public Tensor? UnpackRows { get; }

    /// <summary>The kernel's attention over packed <paramref name="query"/>, <paramref name="keys"/> and <paramref name="values"/> (<see cref="VarlenAttentionKernel"/>).</summary>
    internal Tensor Attend(Tensor query, Tensor keys, Tensor values, double scale) => _kernel(query, keys, values, this, scale);

    public void Dispose()
    {
        CumulativeQueries.Dispose();
        CumulativeContexts.Dispose();
        ContextSlots.Dispose();
        QueryRows?.Dispose();
        UnpackRows?.Dispose();
    }
}
