namespace DeepSeek.Model.Tokenization;

/// <summary>
/// One message of a chat: role <c>system</c>, <c>user</c>, <c>assistant</c> or <c>tool</c> (a function's
/// result). An assistant message may carry the function calls it made (<see cref="ToolCalls"/>).
/// </summary>
public sealed record ChatMessage(string Role, string Content, IReadOnlyList<ChatToolCall>? ToolCalls = null);

/// <summary>A function call of an assistant turn as the template writes it: the function's name and its arguments' JSON text.</summary>
public sealed record ChatToolCall(string Name, string Arguments);

/// <summary>A function offered to the model: its name, description and parameters (a JSON schema's text; null for none).</summary>
public sealed record ChatTool(string Name, string? Description, string? ParametersJson);
