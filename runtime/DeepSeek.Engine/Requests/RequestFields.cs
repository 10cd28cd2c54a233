namespace DeepSeek.Engine.Requests;

/// <summary>
/// How the face a request came through spells the fields whose rules span several values, so that an
/// error names what the client sent: chat's <c>messages</c> and <c>max_completion_tokens</c>, gRPC's
/// <c>token_ids</c>, one prompt of several as <c>prompt[2]</c>. The other fields are spelled alike everywhere.
/// </summary>
public sealed record RequestFields(string Prompt = "prompt", string MaxTokens = "max_tokens", string Logprobs = "logprobs")
{
    /// <summary>The spelling of <c>/v1/completions</c>, which is also the engine's own.</summary>
    public static RequestFields Completions { get; } = new();
}
