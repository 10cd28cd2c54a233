namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed record EmbeddingResponse(List<EmbeddingResponse.Item> Data, string Model, EmbeddingResponse.EmbeddingUsage Usage)
{
    public string Object => "list";

    /// <summary><c>Embedding</c> is a <c>float[]</c>, or a base64 string of little-endian float32 values.</summary>
    internal sealed record Item(int Index, object Embedding)
    {
        public string Object => "embedding";
    }

    internal sealed record EmbeddingUsage(int PromptTokens, int TotalTokens);
}
