using System.Threading.Channels;

namespace DeepSeek.Runtime.Serving;

/// <summary>An admitted request: its events arrive in order and end with one <see cref="GenerationFinished"/>.</summary>
public sealed record GenerationHandle(string RequestId, ChannelReader<GenerationEvent> Events);
