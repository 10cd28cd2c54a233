namespace DeepSeek.Model.Experts;

/// <summary>How <see cref="LocalExperts"/> computes a batch's routed experts.</summary>
public enum ExpertComputePath
{
    /// <summary>
    /// Few tokens: gather each (token, slot) pair's expert weights with <c>index_select</c> and run
    /// two <c>bmm</c>s. Reads (and copies) only the chosen experts; no host synchronisation.
    /// </summary>
    Gather,

    /// <summary>
    /// Medium batches: every local expert on every token (one GEMM over all experts' gate/up, one
    /// <c>bmm</c> for down), combined through a dense <c>[T, E]</c> routing matrix that is zero for
    /// unselected experts. Reads every expert once; static shapes; no host synchronisation.
    /// </summary>
    Dense,

    /// <summary>
    /// Large batches (prefill): pairs sorted by expert, one matmul chain per active expert. One host
    /// synchronisation for the counts, amortised over many tokens; the only exact-FLOP path.
    /// </summary>
    Sorted,

    /// <summary>
    /// Large batches on a rank that holds every expert: pairs sorted by expert, copied into a
    /// zero-padded <c>[E, capacity, hidden]</c> buffer (capacity = the largest count, rounded up), two
    /// <c>bmm</c>s over all experts at once, valid rows combined per token. A constant number of
    /// launches (per expert chunk, when the temporaries would outgrow the device's cap) instead of a
    /// few per active expert; costs E · capacity rows of FLOPs, so skewed routing makes it dearer
    /// than Sorted. Chosen against Sorted after the one host read of the counts.
    /// </summary>
    Grouped,

    /// <summary>
    /// Any batch on a CUDA device with the native helper, bf16, every expert here: pairs sorted by
    /// expert on the device and both projections as one <c>_grouped_mm</c> each, whose per-expert row
    /// ranges are read from a device tensor. Exact FLOPs, reads only the experts that got rows, no
    /// host synchronisation and static shapes for a given token count, so a decode step with it can be
    /// captured as a CUDA graph.
    /// </summary>
    GroupedGemm,

    /// <summary>
    /// Up to <see cref="Int4Experts.FusedMaxTokens"/> tokens through routed experts held as int4
    /// (<see cref="Int4Experts"/>) on CUDA: the native helper's kernels read each pick's expert on the
    /// device (a block per pick, or per expert once picks outnumber experts), gate/up with SwiGLU, down,
    /// and the weighted sum per token in pick order. No host synchronisation, so a decode step with int4
    /// experts can be captured as a CUDA graph.
    /// </summary>
    Int4Fused,
}
