namespace DeepSeek.Model.Tokenization;

/// <summary>A token matched verbatim before pre-tokenisation (<c>added_tokens</c> of tokenizer.json).</summary>
public sealed record AddedToken(int Id, string Content, bool Special);
