using DeepSeek.Gateway.Keys;
using DeepSeek.Gateway.Upstream;

namespace DeepSeek.Gateway.Api;

/// <summary>GET /v1/models and /v1/models/{id}: the public names the caller's key may use, in OpenAI's list shape.</summary>
internal static class ModelsEndpoint
{
    public static async Task ListAsync(HttpContext context, KeyTable keys, ModelTable models)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Caller(context, keys, out var key) is { } error)
        {
            await error.WriteAsync(context);
            return;
        }
        var cards = models.Models.Where(m => KeyCheck.Allows(key, m.Name)).OrderBy(m => m.Name, StringComparer.Ordinal).Select(Card).ToList();
        await context.Response.WriteAsJsonAsync(new ModelList("list", cards), GatewayJsonContext.Default.ModelList, contentType: null, context.RequestAborted);
    }

    public static async Task GetAsync(HttpContext context, string id, KeyTable keys, ModelTable models)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Caller(context, keys, out var key) is { } error)
        {
            await error.WriteAsync(context);
            return;
        }
        // A model outside the key's scope is as absent as an unknown one: listing is what the key may use.
        if (models.Find(id) is not { } model || !KeyCheck.Allows(key, model.Name))
        {
            await GatewayError.UnknownModel(id).WriteAsync(context);
            return;
        }
        await context.Response.WriteAsJsonAsync(Card(model), GatewayJsonContext.Default.ModelCard, contentType: null, context.RequestAborted);
    }

    private static ModelCard Card(GatewayModel model) => new(model.Name, "model", 0, "deepseek-gateway");

    private static GatewayError? Caller(HttpContext context, KeyTable keys, out Configuration.KeyConfig? key)
    {
        var result = KeyCheck.Identify(keys, context.Request.Headers.Authorization);
        key = result.Key;
        return result.Verdict switch
        {
            KeyVerdict.Missing => GatewayError.MissingKey(),
            KeyVerdict.Unknown => GatewayError.UnknownKey(),
            _ => null,
        };
    }
}
