using System.Threading.Channels;
using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine;

/// <summary>
/// A submitted request: its id and its stream of <see cref="TokenEvent"/>s. The stream always ends
/// with an event that has a finish reason (cancelled and failed requests included), then completes.
/// </summary>
public sealed class GenerationHandle(string requestId, ChannelReader<TokenEvent> events)
{
    public string RequestId { get; } = requestId;

    public ChannelReader<TokenEvent> Events { get; } = events;
}
