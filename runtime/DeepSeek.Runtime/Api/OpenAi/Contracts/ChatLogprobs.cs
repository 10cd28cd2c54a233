namespace DeepSeek.Runtime.Api.OpenAi.Contracts;

internal sealed record ChatLogprobs(List<ChatLogprobs.TokenEntry> Content)
{
    internal sealed record TokenEntry(string Token, float Logprob, int[] Bytes, List<Alternative> TopLogprobs);

    internal sealed record Alternative(string Token, float Logprob, int[] Bytes);
}
