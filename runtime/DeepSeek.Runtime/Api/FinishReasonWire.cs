using DeepSeek.Engine.Requests;

namespace DeepSeek.Runtime.Api;

/// <summary>How a finish reason is written on both faces.</summary>
public static class FinishReasonWire
{
    /// <summary>The wire spelling of a finish reason, the same in OpenAI's <c>finish_reason</c> and the proto's.</summary>
    public static string WireText(this FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        FinishReason.Error => "error",
        _ => "cancelled",
    };
}
