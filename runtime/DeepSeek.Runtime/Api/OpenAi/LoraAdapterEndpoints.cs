using DeepSeek.Model.Lora;
using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>
/// vLLM's run-time adapter routes, served with <c>--enable-lora-updates</c>: <c>POST /v1/load_lora_adapter</c>
/// <c>{"lora_name", "lora_path"}</c> and <c>POST /v1/unload_lora_adapter</c> <c>{"lora_name"}</c>. Success is
/// vLLM's plain-text line; a folder that cannot be served, a taken name or an unknown one is a 4xx in
/// OpenAI's error shape, and the server goes on serving. Adapters are read here, off the engine thread
/// (host memory only); a request's first step copies its adapter to the device.
/// </summary>
internal static class LoraAdapterEndpoints
{
    public static async Task LoadAsync(HttpContext http)
    {
        var adapters = Adapters(http);
        var body = await RequestBodyReader.ReadAsync(http, OpenAiJsonContext.Default.LoadLoraAdapterRequest, Options(http).MaxRequestBytes);
        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var name = Required(body.LoraName, "lora_name");
        var path = Required(body.LoraPath, "lora_path");
        try
        {
            adapters.Load(name, path);
        }
        catch (LoraAdapterException e)
        {
            var taken = adapters.Find(name) is not null || name == adapters.BaseName;
            throw new ApiFailure(ApiError.Invalid(taken ? "lora_name" : "lora_path", e.Message, "invalid_lora_adapter"));
        }
        await WriteTextAsync(http, $"Success: LoRA adapter '{name}' added successfully.");
    }

    public static async Task UnloadAsync(HttpContext http)
    {
        var adapters = Adapters(http);
        var body = await RequestBodyReader.ReadAsync(http, OpenAiJsonContext.Default.UnloadLoraAdapterRequest, Options(http).MaxRequestBytes);
        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var name = Required(body.LoraName, "lora_name");
        if (!adapters.Unload(name))
            throw new ApiFailure(new ApiError(ApiErrorKind.NotFound, $"The LoRA adapter '{name}' cannot be found; GET /v1/models lists the adapters served.", "lora_name", "lora_adapter_not_found"));
        await WriteTextAsync(http, $"Success: LoRA adapter '{name}' removed successfully.");
    }

    private static LoraAdapterSet Adapters(HttpContext http) =>
        http.RequestServices.GetRequiredService<IInferenceBackend>().Model.Adapters
        ?? throw new ApiFailure(new ApiError(ApiErrorKind.NotFound, "This server serves no LoRA adapters.", Code: "unknown_url"));

    private static OpenAiOptions Options(HttpContext http) => http.RequestServices.GetRequiredService<OpenAiOptions>();

    private static string Required(string? value, string field) => string.IsNullOrWhiteSpace(value)
        ? throw new ApiFailure(ApiError.Invalid(field, $"{field} is required; send {{\"lora_name\": \"NAME\", \"lora_path\": \"DIR\"}} (lora_path for loading only).", "missing_field"))
        : value;

    private static async Task WriteTextAsync(HttpContext http, string text)
    {
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync(text, http.RequestAborted);
    }
}
