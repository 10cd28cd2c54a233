using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// Moves one MoE layer's routed tokens between the ranks of an expert-parallel group: dispatch sends
/// each peer the hidden states of the tokens that picked experts it holds, combine brings back each
/// peer's weighted expert outputs. In-process (<see cref="InProcessExpertGroup"/>) for tests; gRPC
/// and NCCL between processes.
/// <para>
/// Called on the engine thread, once per MoE layer per step, with every peer's batch at once so an
/// implementation can issue them all together. <see cref="Dispatch"/> returns without waiting for
/// the answers (the caller computes its own experts meanwhile); <see cref="IExpertCombine.Combine"/>
/// waits. Tensors handed back must be created on the calling thread (dispose scopes are per thread):
/// an implementation that receives bytes on other threads turns them into tensors in Combine.
/// </para>
/// </summary>
public interface IExpertTransport
{
    /// <param name="layerIndex">The MoE layer (model layer index), so the peer uses that layer's experts.</param>
    /// <param name="placementVersion">
    /// The <see cref="ExpertPlacement.Version"/> the picks were routed by. A peer computes only for
    /// the placement it holds and refuses any other (the group is switching, or a rank restarted with
    /// the initial placement): a mismatch is an <see cref="ExpertTransportException"/>, never wrong tokens.
    /// </param>
    /// <param name="batches">At most one batch per peer rank, never this rank's own.</param>
    IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches);
}

/// <summary>The answers to one <see cref="IExpertTransport.Dispatch"/>.</summary>
public interface IExpertCombine
{
    /// <summary>Waits for every peer: per batch, in the order dispatched, its <c>[rows, hidden]</c> weighted sum.</summary>
    /// <exception cref="ExpertTransportException">A peer failed or could not be reached.</exception>
    IReadOnlyList<Tensor> Combine();
}

/// <summary>The combine of a transport whose answers are already computed when it dispatches.</summary>
public sealed class CompletedCombine(IReadOnlyList<Tensor> results) : IExpertCombine
{
    public IReadOnlyList<Tensor> Combine() => results;
}

/// <summary>
/// What one peer rank computes for one MoE layer (DeepEP's layout): rows of token states
/// <c>[n, hidden]</c>, each row's k picks as global expert ids <c>[n, k]</c> (int64, −1 for a pick
/// another rank computes) and their weights <c>[n, k]</c> (0 where the id is −1). The peer returns
/// <c>Σ_k weight · expert_id(row)</c> per row, <c>[n, hidden]</c> in the dtype of the states.
/// Tokens travel once per rank, not once per pick.
/// </summary>
public sealed record ExpertBatch(int Rank, Tensor Hidden, Tensor ExpertIds, Tensor Weights);

/// <summary>A peer of the expert-parallel group failed or could not be reached; the message names it.</summary>
public sealed class ExpertTransportException(string message, Exception? inner = null) : Exception(message, inner);
