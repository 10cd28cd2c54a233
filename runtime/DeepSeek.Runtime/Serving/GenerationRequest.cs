using SamplingParameters = DeepSeek.Engine.Requests.SamplingParameters;

namespace DeepSeek.Runtime.Serving;

/// <summary>One sequence to generate: the prompt as token ids (already templated) and how to sample (validated by the API's SamplingRules; max_tokens always set).</summary>
public sealed record GenerationRequest(string RequestId, int[] PromptTokenIds, SamplingParameters Sampling);
