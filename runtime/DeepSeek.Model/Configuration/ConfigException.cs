namespace DeepSeek.Model.Configuration;

/// <summary>A config.json that cannot describe a supported model; the message names the key to change.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException() { }
    public ConfigException(string message) : base(message) { }
    public ConfigException(string message, Exception innerException) : base(message, innerException) { }
}
