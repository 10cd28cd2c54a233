namespace DeepSeek.Model.Tokenization;

/// <summary>One message of a chat: role <c>system</c>, <c>user</c> or <c>assistant</c>.</summary>
public sealed record ChatMessage(string Role, string Content);
