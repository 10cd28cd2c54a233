namespace DeepSeek.Model.Experts;

/// <summary>How <see cref="LocalExpertDispatcher"/> computes a batch's routed experts.</summary>
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
}
