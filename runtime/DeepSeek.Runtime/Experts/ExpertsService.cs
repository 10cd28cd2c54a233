using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;

namespace DeepSeek.Runtime.Experts;

/// <summary>What a rank does for its leader; the implementation runs the tensor work on the rank's engine thread.</summary>
public interface IRankExperts
{
    RankStatus Status();

    /// <exception cref="FormatException">The request's tensors are malformed.</exception>
    /// <exception cref="ArgumentException">A pair names an expert this rank does not hold, or a layer that has no experts.</exception>
    Task<ComputeReply> ComputeAsync(ComputeRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// The gRPC face of <see cref="IRankExperts"/> on the expert port. Bad requests are the caller's
/// fault (INVALID_ARGUMENT / FAILED_PRECONDITION) and never stop the rank.
/// </summary>
public sealed class ExpertsService(IRankExperts experts) : Grpc.V1.Experts.ExpertsBase
{
    public override Task<RankStatus> Status(RankStatusRequest request, ServerCallContext context) => Task.FromResult(experts.Status());

    public override async Task<ComputeReply> Compute(ComputeRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await experts.ComputeAsync(request, context.CancellationToken);
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
