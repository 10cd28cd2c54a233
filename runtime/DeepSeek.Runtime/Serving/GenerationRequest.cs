namespace DeepSeek.Runtime.Serving;

/// <summary>One sequence to generate: the prompt as token ids (already templated) and how to sample.</summary>
public sealed record GenerationRequest(string RequestId, int[] PromptTokenIds, SamplingParameters Sampling);
