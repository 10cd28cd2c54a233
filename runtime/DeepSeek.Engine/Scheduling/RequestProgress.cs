using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Scheduling;

/// <summary>What a step did for one request: the token it appended, if any, and why it finished, if it did.</summary>
public sealed record RequestProgress(EngineRequest Request, int? NewTokenId, FinishReason? FinishReason);
