namespace DeepSeek.Engine.Requests;

/// <summary>
/// A request the engine will not serve as given (HTTP 400 / gRPC INVALID_ARGUMENT). <see cref="Param"/>
/// names the offending field as the API spells it, <see cref="Code"/> is a stable machine-readable reason.
/// </summary>
public sealed class InvalidRequestException : Exception
{
    public InvalidRequestException(string param, string message, string code = "invalid_value")
        : base(message)
    {
        Param = param;
        Code = code;
    }

    public InvalidRequestException() : this("", "Invalid request.") { }

    public InvalidRequestException(string message) : this("", message) { }

    public InvalidRequestException(string message, Exception innerException) : base(message, innerException)
    {
        Param = "";
        Code = "invalid_value";
    }

    public string Param { get; }

    public string Code { get; }
}
