using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// What a step did for one request: the token it appended (with the log-probabilities the request
/// asked for), if any, and why it finished, if it did.
/// </summary>
public sealed record RequestProgress(EngineRequest Request, int? NewTokenId, FinishReason? FinishReason, SampledLogprobs? Logprobs = null);
