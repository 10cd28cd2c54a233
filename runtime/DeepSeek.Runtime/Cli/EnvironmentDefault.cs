using System.Globalization;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// Defaults for command-line options that a container sets through its environment: the option
/// <c>--http-port</c> reads <c>DEEPSEEK_HTTP_PORT</c> when the flag is absent. A flag always wins.
/// </summary>
public static class EnvironmentDefault
{
    public static string VariableFor(string optionName) => DeepSeek.Contract.RuntimeContract.VariableFor(optionName);

    public static T Get<T>(string optionName, T fallback) where T : IParsable<T>
    {
        var variable = VariableFor(optionName);
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text)) return fallback;
        return T.TryParse(text, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new EnvironmentDefaultException($"Environment variable {variable}='{text}' is not a valid {typeof(T).Name} for {optionName}.");
    }

    public static string? GetString(string optionName)
    {
        var text = Environment.GetEnvironmentVariable(VariableFor(optionName));
        return string.IsNullOrWhiteSpace(text) ? null : text;
    }
}

/// <summary>A <c>DEEPSEEK_*</c> environment variable that does not parse as its option's type.</summary>
public sealed class EnvironmentDefaultException : Exception
{
    public EnvironmentDefaultException(string message) : base(message) { }
    public EnvironmentDefaultException(string message, Exception inner) : base(message, inner) { }
    public EnvironmentDefaultException() { }
}
