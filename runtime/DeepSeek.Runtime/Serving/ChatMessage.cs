namespace DeepSeek.Runtime.Serving;

public sealed record ChatMessage(ChatRole Role, string Content);
