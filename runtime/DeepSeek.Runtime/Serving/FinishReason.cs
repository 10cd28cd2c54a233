namespace DeepSeek.Runtime.Serving;

public enum FinishReason
{
    /// <summary>End of sequence, a stop string or a stop token id.</summary>
    Stop,
    /// <summary>max_tokens reached, or the context is full.</summary>
    Length,
    /// <summary>The caller went away or cancelled.</summary>
    Cancelled,
    /// <summary>The engine failed while running it (its log says why).</summary>
    Error,
}
