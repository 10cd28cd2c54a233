using DeepSeek.Chart.Tests.Infrastructure;

namespace DeepSeek.Chart.Tests.Chart;

public sealed class LintAndSchemaTests
{
    [Theory]
    [MemberData(nameof(ValuesMode.All), MemberType = typeof(ValuesMode))]
    public void Helm_lint_passes(string mode)
    {
        var result = Helm.Lint(ValuesMode.Files(mode));

        Assert.True(result.ExitCode == 0, $"helm lint ({mode}) failed:\n{result.StandardOutput}\n{result.StandardError}");
        Assert.Contains("0 chart(s) failed", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("replicaCount=notanumber", "/replicaCount")]
    [InlineData("leaderElection.enabled=maybe", "/leaderElection/enabled")]
    [InlineData("metrics.port=http", "/metrics/port")]
    [InlineData("watchNamespaces[0]=Not_A_Namespace", "/watchNamespaces/0")]
    [InlineData("runtimeDefaults.tolerations[0].effect=Sometimes", "/runtimeDefaults/tolerations/0/effect")]
    [InlineData("replicaCont=2", "replicaCont")]
    [InlineData("gateway.models.routing=random", "/gateway/models/routing")]
    [InlineData("gateway.keySecrets[0]=Not_A_Secret", "/gateway/keySecrets/0")]
    [InlineData("gateway.namespaces[0]=Not_A_Namespace", "/gateway/namespaces/0")]
    public void Values_schema_rejects_wrong_values_in_template_and_lint(string set, string reportedPath)
    {
        var template = Helm.Template(sets: [set]);
        var lint = Helm.Lint(sets: [set]);

        Assert.NotEqual(0, template.ExitCode);
        Assert.Contains(reportedPath, template.StandardError, StringComparison.Ordinal);
        Assert.NotEqual(0, lint.ExitCode);
        Assert.Contains(reportedPath, lint.StandardOutput + lint.StandardError, StringComparison.Ordinal);
    }
}
