namespace DeepSeek.Operator.Autoscaling;

/// <summary>Reads the load of a model's replicas; one observation per endpoint, in the same order.</summary>
public interface IReplicaLoadSource
{
    /// <summary>Never throws for a replica that fails to answer: that replica comes back Unreachable.</summary>
    Task<IReadOnlyList<ReplicaLoad>> ReadAsync(string modelKey, IReadOnlyList<ReplicaEndpoint> replicas, CancellationToken cancellationToken);

    /// <summary>Releases what is held for a model (its connections) once it is gone.</summary>
    void Forget(string modelKey);
}
