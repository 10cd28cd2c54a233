namespace DeepSeek.Engine.Admission;

/// <summary>
/// What the engine accepts. <see cref="MaxContextTokens"/> is the smaller of the model's context and
/// what the KV pool holds, so an admitted request can always run to its end alone.
/// </summary>
public sealed record AdmissionLimits(int MaxQueuedRequests, int MaxContextTokens)
{
    public void Validate()
    {
        if (MaxQueuedRequests < 0) throw new ArgumentException($"--max-queued-requests must be 0 or more, got {MaxQueuedRequests}.");
        if (MaxContextTokens < 2) throw new ArgumentException($"The context must hold at least 2 tokens, got {MaxContextTokens}.");
    }
}
