using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The portable transport: per MoE layer, one Compute call per peer, all issued at once; the
/// leader computes its own experts while they run and waits in <see cref="IExpertCombine.Combine"/>.
/// Tensors cross as raw bytes (<see cref="WireTensors"/>): one device-to-host copy of the routed
/// tokens out and one host-to-device copy of the answers back per peer, which is what bounds it (see
/// docs/benchmarks.md); NCCL is the transport for GPUs.
/// </summary>
/// <remarks>
/// The first exchange (the engine's warm-up, which may run while the ranks still load) waits up to
/// <c>firstGroupWait</c> for every rank to be ready; later ones call at once and fail if a rank is gone.
/// </remarks>
/// <remarks>
/// With data-parallel attention (<paramref name="peerWork"/>), every rank dispatches and answers at once: while
/// this rank waits for its peers it runs the work they sent it, which they wait for in turn.
/// </remarks>
public sealed class GrpcExpertTransport(ExpertPeers peers, TimeSpan deadline, TimeSpan firstGroupWait = default, PeerWork? peerWork = null) : IExpertTransport
{
    private bool _groupSeen;

    public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (!_groupSeen)
        {
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!peers.Readiness.Ready && waited.Elapsed < firstGroupWait)
            {
                // Peers warming up at the same time send their first exchanges here meanwhile.
                peerWork?.RunPending();
                Thread.Sleep(peerWork is null ? 100 : 10);
            }
            _groupSeen = true;
        }
        var calls = new List<(ExpertBatch Batch, Task<ComputeReply> Reply)>(batches.Count);
        foreach (var batch in batches)
        {
            var request = new ComputeRequest
            {
                Layer = layerIndex,
                PlacementVersion = placementVersion,
                Hidden = WireTensors.Encode(batch.Hidden),
                ExpertIds = WireTensors.Encode(batch.ExpertIds),
                Weights = WireTensors.Encode(batch.Weights),
            };
            calls.Add((batch, peers.ComputeAsync(batch.Rank, request, deadline, CancellationToken.None)));
        }
        return new PendingReplies(calls, peerWork);
    }

    /// <summary>Waits on the engine thread and builds the tensors there (dispose scopes are per thread).</summary>
    private sealed class PendingReplies(List<(ExpertBatch Batch, Task<ComputeReply> Reply)> calls, PeerWork? peerWork) : IExpertCombine
    {
        public IReadOnlyList<Tensor> Combine()
        {
            var results = new List<Tensor>(calls.Count);
            foreach (var (batch, reply) in calls)
            {
                // A failed call is already an ExpertTransportException naming the rank (ExpertPeers).
                peerWork?.Wait(reply);
                var answer = reply.GetAwaiter().GetResult();
                // The sharded layer checks the answer's shape and dtype against its batch; only the bytes are checked here.
                try
                {
                    results.Add(WireTensors.Decode(answer.Output, batch.Hidden.device));
                }
                catch (FormatException e)
                {
                    throw new ExpertTransportException($"Rank {batch.Rank} answered a malformed tensor: {e.Message}", e);
                }
            }
            return results;
        }
    }
}
