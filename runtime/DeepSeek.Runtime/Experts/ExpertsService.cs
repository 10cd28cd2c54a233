using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;

namespace DeepSeek.Runtime.Experts;

/// <summary>What a rank does for its peers (the leader, or data-parallel ranks); the implementation runs the tensor work on the thread that owns its model.</summary>
public interface IRankExperts
{
    RankStatus Status();

    /// <exception cref="FormatException">The request's tensors are malformed.</exception>
    /// <exception cref="ArgumentException">A pair names an expert this rank does not hold, or a layer that has no experts.</exception>
    Task<ComputeReply> ComputeAsync(ComputeRequest request, CancellationToken cancellationToken);

    /// <exception cref="ArgumentException">Not a placement of this group and model.</exception>
    /// <exception cref="InvalidOperationException">The rank cannot load the placement's experts now.</exception>
    Task<PlacementReply> PrepareAsync(PreparePlacementRequest request, CancellationToken cancellationToken);

    /// <exception cref="InvalidOperationException">The version is neither in force nor staged.</exception>
    Task<PlacementReply> CommitAsync(long version);

    Task<PlacementReply> AbandonAsync(long version);

    /// <summary>The picks this rank's own forwards routed since the last call (data-parallel attention; empty otherwise).</summary>
    ExpertLoadReply ExpertLoad();
}

/// <summary>
/// The gRPC face of <see cref="IRankExperts"/> on the expert port. Bad requests are the caller's
/// fault (INVALID_ARGUMENT / FAILED_PRECONDITION) and never stop the rank.
/// </summary>
public sealed class ExpertsService(IRankExperts experts) : Grpc.V1.Experts.ExpertsBase
{
    public override Task<RankStatus> Status(RankStatusRequest request, ServerCallContext context) => Task.FromResult(experts.Status());

    public override Task<ComputeReply> Compute(ComputeRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Answer(() => experts.ComputeAsync(request, context.CancellationToken));
    }

    public override Task<PlacementReply> PreparePlacement(PreparePlacementRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Answer(() => experts.PrepareAsync(request, context.CancellationToken));
    }

    public override Task<PlacementReply> CommitPlacement(PlacementVersionRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Answer(() => experts.CommitAsync(request.PlacementVersion));
    }

    public override Task<PlacementReply> AbandonPlacement(PlacementVersionRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Answer(() => experts.AbandonAsync(request.PlacementVersion));
    }

    public override Task<ExpertLoadReply> ExpertLoad(ExpertLoadRequest request, ServerCallContext context) => Answer(() => Task.FromResult(experts.ExpertLoad()));

    private static async Task<T> Answer<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (InvalidOperationException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
    }
}
