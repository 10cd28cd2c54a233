namespace DeepSeek.Operator.Cli;

/// <summary>No cluster configuration, or an API server that does not answer: the operator cannot start.</summary>
public sealed class ClusterUnreachableException : Exception
{
    public ClusterUnreachableException(string message) : base(message) { }
    public ClusterUnreachableException(string message, Exception inner) : base(message, inner) { }
    public ClusterUnreachableException() { }
}
