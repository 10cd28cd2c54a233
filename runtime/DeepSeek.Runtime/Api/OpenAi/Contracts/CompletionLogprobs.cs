namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

/// <summary>The legacy completions API's parallel arrays, one entry per generated token.</summary>
internal sealed record CompletionLogprobs(List<string> Tokens, List<float> TokenLogprobs, List<Dictionary<string, float>> TopLogprobs, List<int> TextOffset);
