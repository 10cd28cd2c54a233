using DeepSeek.Engine.Requests;

namespace DeepSeek.Runtime.Cli;

/// <summary>What <c>generate</c> collects from the request's events: every generated token (end-of-sequence included), its text and log-probabilities.</summary>
internal sealed class GeneratedSequence
{
    public List<int> TokenIds { get; } = [];

    public List<SampledLogprobs> Logprobs { get; } = [];

    public string Text { get; set; } = "";
}
