namespace DeepSeek.Model.Experts;

/// <summary>
/// How <see cref="LocalExperts"/> computes a layer's routed experts: one path per layer, chosen when
/// the model is loaded (<see cref="LocalExperts.Choose"/>), never per batch.
/// </summary>
public enum ExpertComputePath
{
    /// <summary>
    /// Pairs sorted by expert, one matmul chain per active expert, the counts read back to the host
    /// once. Exact FLOPs and only the chosen experts read: the CPU's path (where matmuls are
    /// memory-bound and a synchronisation is free), a shard's (it skips the pairs of experts held
    /// elsewhere), and CUDA's without the native helper.
    /// </summary>
    Sorted,

    /// <summary>
    /// On CUDA with the native helper, bf16, every expert here: pairs sorted by expert on the device and
    /// both projections as one <c>_grouped_mm</c> each, whose per-expert row ranges are read from a
    /// device tensor. Exact FLOPs, reads only the experts that got rows, no host synchronisation and
    /// static shapes for a given token count, so a decode step with it can be captured as a CUDA graph.
    /// Faster than the padded batched matmul at 1, 8 and 2,048 tokens and within 0.1 ms of it between
    /// (docs/gpu.md), and what took batch-32 prefill from 0.99× to 1.34× the peer (docs/benchmarks.md).
    /// </summary>
    GroupedGemm,

    /// <summary>
    /// Routed experts held as int4 (<see cref="Int4Experts"/>) on CUDA: up to
    /// <see cref="Int4Experts.FusedMaxTokens"/> tokens the native helper's kernels read each pick's
    /// expert on the device (a block per pick, or per expert once picks outnumber experts), gate/up with
    /// SwiGLU, down, and the weighted sum per token in pick order, without a host synchronisation, so a
    /// decode step with int4 experts can be captured. Larger batches take <see cref="Sorted"/> with each
    /// active expert dequantised once, which is cheaper there (docs/quantization.md).
    /// </summary>
    Int4Fused,

    /// <summary>
    /// Routed experts held FP8-resident on CUDA with the native helper, bf16 activations, every expert
    /// here: up to <see cref="LocalExperts.Fp8FusedMaxTokens"/> tokens the helper's kernels read each
    /// pick's expert bytes on the device (as <see cref="Int4Fused"/>: half of bf16's bytes, no host
    /// synchronisation; tensor-core tiles that multiply the FP8 values themselves once picks outnumber
    /// experts); larger batches dequantise the layer's stacks to bf16 on the device in one kernel each
    /// and take <see cref="GroupedGemm"/>.
    /// </summary>
    Fp8Fused,

    /// <summary>
    /// A layer whose whole stack of experts is small (<see cref="LocalExperts.DenseMaxStackBytes"/>, such
    /// as the embedded demo model's), every expert held: every expert on every token (one GEMM over all
    /// experts' gate/up, one <c>bmm</c> for down) combined through a dense <c>[T, E]</c> routing matrix
    /// that is zero for unselected experts. A dozen operations whatever the routing, where Sorted spends
    /// about nine per active expert; for a stack this small the per-operation overhead, not the bytes,
    /// is the step's time (without it the demo model's batch-1 CPU decode lost about a quarter, docs/benchmarks.md).
    /// </summary>
    Dense,
}
