using k8s.Models;

namespace DeepSeek.Operator.Cli;

/// <summary>Parses <c>--default-node-selector key=value</c> and <c>--default-toleration</c> in kubectl taint syntax.</summary>
public static class SchedulingFlags
{
    private static readonly string[] Effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

    public static KeyValuePair<string, string> ParseNodeSelector(string text)
    {
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || equals == text.Length - 1)
            throw new FormatException($"--default-node-selector '{text}' must be key=value, e.g. nvidia.com/gpu.present=true.");
        return KeyValuePair.Create(text[..equals], text[(equals + 1)..]);
    }

    /// <summary><c>key=value:Effect</c> (operator Equal) or <c>key:Effect</c> (operator Exists); the effect may be left out to tolerate every effect.</summary>
    public static V1Toleration ParseToleration(string text)
    {
        var colon = text.LastIndexOf(':');
        string? effect = null;
        var keyValue = text;
        if (colon >= 0)
        {
            effect = text[(colon + 1)..];
            keyValue = text[..colon];
            if (!Effects.Contains(effect))
                throw new FormatException($"--default-toleration '{text}': effect must be one of {string.Join(", ", Effects)}.");
        }
        var equals = keyValue.IndexOf('=', StringComparison.Ordinal);
        var key = equals < 0 ? keyValue : keyValue[..equals];
        if (key.Length == 0)
            throw new FormatException($"--default-toleration '{text}' needs a key: key[=value]:Effect, e.g. nvidia.com/gpu:NoSchedule.");
        return equals < 0
            ? new V1Toleration { Key = key, OperatorProperty = "Exists", Effect = effect }
            : new V1Toleration { Key = key, OperatorProperty = "Equal", Value = keyValue[(equals + 1)..], Effect = effect };
    }
}
