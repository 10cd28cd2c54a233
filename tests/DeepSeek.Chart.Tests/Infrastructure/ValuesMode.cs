namespace DeepSeek.Chart.Tests.Infrastructure;

/// <summary>The ways the tests install the chart: the values files (under the chart) each one uses.</summary>
public static class ValuesMode
{
    public const string Default = "default";
    public const string Full = "full";
    public const string Namespaced = "namespaced";

    public static IReadOnlyList<string> Files(string mode) => mode switch
    {
        Default => [],
        Full => ["ci/full-values.yaml"],
        Namespaced => ["ci/namespaced-values.yaml"],
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown values mode"),
    };

    public static TheoryData<string> All => new(Default, Full, Namespaced);
}
