namespace DeepSeek.Runtime.Cli;

/// <summary>A <c>DEEPSEEK_*</c> environment variable that does not parse as its option's type.</summary>
public sealed class EnvironmentDefaultException : Exception
{
    public EnvironmentDefaultException(string message) : base(message) { }
    public EnvironmentDefaultException(string message, Exception inner) : base(message, inner) { }
    public EnvironmentDefaultException() { }
}
