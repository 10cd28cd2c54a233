namespace DeepSeek.Runtime.Api;

/// <summary>Carries an <see cref="ApiError"/> out of deep validation code to the endpoint that reports it.</summary>
public sealed class ApiFailure(ApiError error) : Exception(error.Message)
{
    public ApiError Error { get; } = error;
}
