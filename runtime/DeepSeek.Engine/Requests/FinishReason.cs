namespace DeepSeek.Engine.Requests;

/// <summary>Why a request stopped producing tokens (OpenAI's <c>finish_reason</c> plus our own failure cases).</summary>
public enum FinishReason
{
    /// <summary>A stop string, a stop token id or the end-of-sequence token.</summary>
    Stop,

    /// <summary><c>max_tokens</c> reached, or the context is full.</summary>
    Length,

    /// <summary>The client cancelled or disconnected.</summary>
    Cancelled,

    /// <summary>The engine failed while serving it.</summary>
    Error,
}
