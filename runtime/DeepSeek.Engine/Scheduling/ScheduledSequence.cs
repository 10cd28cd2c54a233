using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// One request's share of a step: tokens [<see cref="StartPosition"/>, <see cref="StartPosition"/> +
/// <see cref="NumTokens"/>) are computed. <see cref="SamplesToken"/> when the chunk reaches the
/// request's last token, so its logits give the next token (a middle prefill chunk samples nothing).
/// </summary>
public sealed record ScheduledSequence(EngineRequest Request, int StartPosition, int NumTokens, bool SamplesToken)
{
    public bool IsDecode => NumTokens == 1 && StartPosition >= Request.NumPromptTokens;
}
