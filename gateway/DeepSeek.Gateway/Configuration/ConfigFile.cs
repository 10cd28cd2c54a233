using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace DeepSeek.Gateway.Configuration;

/// <summary>A configuration file that cannot be used, with every reason in <see cref="Exception.Message"/> (one per line).</summary>
internal sealed class GatewayConfigException(string message) : Exception(message);

/// <summary>Reads <c>--config FILE</c>: YAML in the names of design §7, then one validation of the whole.</summary>
internal static class ConfigFile
{
    /// <exception cref="GatewayConfigException">The file is missing, not YAML of this shape, or names invalid values (all of them listed).</exception>
    public static GatewayConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GatewayConfigException($"{path}: cannot read it: {e.Message}");
        }
        return Parse(text, path);
    }

    public static GatewayConfig Parse(string yaml, string source = "config")
    {
        var config = Deserialize<GatewayConfig?>(yaml, source);
        if (config is null) throw new GatewayConfigException($"{source}: empty; it needs at least models:");
        var problems = config.Problems();
        if (problems.Count > 0)
            throw new GatewayConfigException($"{source}: {problems.Count} problem{(problems.Count == 1 ? "" : "s")}:\n" + string.Join('\n', problems.Select(p => "  " + p)));
        return config;
    }

    /// <summary>
    /// YAML in the file's names (camelCase; an unknown field is a mistake): the whole file, or a part of the
    /// same shape kept elsewhere (the <c>keys:</c> list of a key Secret).
    /// </summary>
    /// <exception cref="GatewayConfigException">Not YAML of this shape; the message names line and column.</exception>
    public static T Deserialize<T>(string yaml, string source)
    {
        try
        {
            return Yaml.Deserialize<T>(yaml);
        }
        catch (YamlException e)
        {
            // YamlDotNet stops at the first shape error (an unknown field, a word where a number goes); it names line and column.
            var reason = e.InnerException?.Message ?? e.Message;
            throw new GatewayConfigException($"{source}: line {e.Start.Line}, column {e.Start.Column}: {reason}");
        }
    }

    private static readonly IDeserializer Yaml = new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build();
}
