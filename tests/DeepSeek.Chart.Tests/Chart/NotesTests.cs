using DeepSeek.Chart.Tests.Infrastructure;

namespace DeepSeek.Chart.Tests.Chart;

/// <summary>NOTES.txt tells the user what to do after the install.</summary>
public sealed class NotesTests
{
    [Theory]
    [InlineData(ValuesMode.Default, "kubectl apply -n default -f samples/serving_v1alpha1_deepseekmodel_v2lite.yaml")]
    [InlineData(ValuesMode.Namespaced, "kubectl apply -n team-a -f samples/serving_v1alpha1_deepseekmodel_v2lite.yaml")]
    public void Notes_say_how_to_create_and_watch_a_model(string mode, string applyCommand)
    {
        var files = ValuesMode.Files(mode).SelectMany(f => new[] { "--values", Path.Combine(Repository.ChartDirectory, f) });
        var result = Helm.Run(
            ["install", "deepseek-operator", Repository.ChartDirectory, "--namespace", Helm.ReleaseNamespace, "--dry-run=client", .. files])
            .EnsureSuccess("helm install --dry-run=client");
        var notes = result.StandardOutput[result.StandardOutput.IndexOf("NOTES:", StringComparison.Ordinal)..];

        Assert.Contains(applyCommand, notes, StringComparison.Ordinal);
        // The sample's claim first: nobody else creates it.
        var prerequisites = applyCommand.Replace("samples/serving_v1alpha1_deepseekmodel_v2lite.yaml", "samples/prerequisites/v2lite.yaml", StringComparison.Ordinal);
        Assert.True(File.Exists(Repository.PathOf("samples", "prerequisites", "v2lite.yaml")));
        Assert.Contains(prerequisites + "\n   " + applyCommand, notes, StringComparison.Ordinal);
        Assert.Contains("kubectl get dsm", notes, StringComparison.Ordinal);
        Assert.Contains($"kubectl -n {Helm.ReleaseNamespace} rollout status deployment/deepseek-operator", notes, StringComparison.Ordinal);
    }
}
