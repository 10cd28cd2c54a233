using System.Runtime.InteropServices;
using DeepSeek.Engine.Requests;
using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary><c>POST /v1/embeddings</c>: a batch of texts or token-id lists, one vector each.</summary>
internal static class EmbeddingsEndpoint
{
    public static async Task HandleAsync(HttpContext http)
    {
        var services = http.RequestServices;
        var backend = services.GetRequiredService<IInferenceBackend>();
        var options = services.GetRequiredService<OpenAiOptions>();
        var body = await RequestBodyReader.ReadAsync(http, OpenAiJsonContext.Default.EmbeddingRequest, options.MaxRequestBytes);

        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var modelName = OpenAiEndpoints.CheckModel(body.Model, backend.Model);
        var base64 = body.EncodingFormat switch
        {
            null or "float" => false,
            "base64" => true,
            _ => throw new InvalidRequestException("encoding_format", $"encoding_format '{body.EncodingFormat}' is not supported; use \"float\" or \"base64\"."),
        };
        var dimensions = backend.Model.EmbeddingDimensions;
        if (body.Dimensions is { } asked && asked != dimensions)
            throw new InvalidRequestException("dimensions", $"This model's embeddings have {dimensions} dimensions; omit dimensions or send {dimensions}.");

        var inputs = OpenAiInputs.Prompts(body.Input, "input");
        if (inputs.Count > options.MaxEmbeddingInputs)
            throw new InvalidRequestException("input", $"input has {inputs.Count} items; send at most {options.MaxEmbeddingInputs} per request.");
        // Text that cannot fit is refused before it is tokenized; the engine checks the token ids.
        var validator = backend.Model.Validator;
        var tokenized = new List<IReadOnlyList<int>>(inputs.Count);
        for (var i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].Text is { } text) validator.CheckTextFits(text, inputs.Count == 1 ? "input" : $"input[{i}]");
            tokenized.Add(inputs[i].TokenIds ?? backend.Encode(inputs[i].Text!, addSpecialTokens: true));
        }

        var vectors = await backend.EmbedAsync(tokenized, http.RequestAborted);
        var data = vectors.Select((vector, i) => new EmbeddingResponse.Item(i, base64 ? Base64(vector) : vector)).ToList();
        var tokens = tokenized.Sum(ids => ids.Count);
        await http.Response.WriteAsJsonAsync(new EmbeddingResponse(data, modelName, new EmbeddingResponse.EmbeddingUsage(tokens, tokens)),
            OpenAiJsonContext.Default.EmbeddingResponse, contentType: "application/json", http.RequestAborted);
    }

    /// <summary>OpenAI's base64 format: the float32 values little-endian, as the openai SDKs decode them.</summary>
    private static string Base64(float[] vector)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("base64 embeddings are written on little-endian hosts only.");
        return Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan()));
    }
}
