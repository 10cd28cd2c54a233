namespace DeepSeek.Gateway.Api;

/// <summary>The id that ties a request's audit line to the runtime's log: the caller's <c>x-request-id</c> when it is a sane token, else a new one.</summary>
internal static class RequestIds
{
    public static string From(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var given = request.Headers["x-request-id"].ToString();
        return given.Length is > 0 and <= 128 && given.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')
            ? given
            : Guid.NewGuid().ToString("N");
    }
}
