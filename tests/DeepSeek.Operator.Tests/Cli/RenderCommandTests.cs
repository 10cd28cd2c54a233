using System.Diagnostics;
using DeepSeek.Operator.Cli;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Tests.Support;

namespace DeepSeek.Operator.Tests.Cli;

/// <summary><c>render</c> refuses what the API server's strict field validation refuses, saying where (issue 18, defect 10).</summary>
public sealed class RenderCommandTests
{
    private static readonly OperatorDefaults Defaults = new() { RuntimeImage = "runtime:test" };

    private const string Manifest = """
        apiVersion: serving.deepseek-operator.io/v1alpha1
        kind: DeepSeekModel
        metadata:
          name: m
        spec:
          model:
            source:
              pvc:
                claimName: weights
          runtime:
            gpusPerPods: 4
          engine:
            maxRunningRequest: 32
        """;

    [Fact]
    public void Unknown_fields_are_refused_with_their_line_and_column()
    {
        var (yaml, errors) = RenderCommand.Render(Manifest, Defaults);
        Assert.Null(yaml);
        Assert.Equal(
            ["spec.runtime.gpusPerPods: unknown field \"gpusPerPods\" (line 11, column 5)", "spec.engine.maxRunningRequest: unknown field \"maxRunningRequest\" (line 13, column 5)"],
            errors.Select(e => e.ToString()));
    }

    [Fact]
    public void A_value_of_the_wrong_type_names_the_field_and_its_line_not_a_byte_offset()
    {
        var (_, errors) = RenderCommand.Render(Manifest.Replace("gpusPerPods: 4", "gpusPerPod: four", StringComparison.Ordinal).Replace("maxRunningRequest:", "maxRunningRequests:", StringComparison.Ordinal), Defaults);
        var error = Assert.Single(errors);
        Assert.Equal("spec.runtime.gpusPerPod", error.Field);
        Assert.Contains("(line 11, column 5)", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("BytePosition", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_yaml_syntax_error_says_its_line_and_column()
    {
        var (_, errors) = RenderCommand.Render("apiVersion: v1\nkind: [unclosed\n", Defaults);
        Assert.StartsWith("line ", Assert.Single(errors).Field, StringComparison.Ordinal);
    }

    [Fact]
    public void Validator_errors_point_at_the_line_too()
    {
        var (_, errors) = RenderCommand.Render(Manifest.Replace("gpusPerPods: 4", "gpusPerPod: 65", StringComparison.Ordinal).Replace("maxRunningRequest:", "maxRunningRequests:", StringComparison.Ordinal), Defaults);
        var error = Assert.Single(errors);
        Assert.Equal("spec.runtime.gpusPerPod", error.Field);
        Assert.EndsWith("(line 11, column 5)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dash_reads_the_manifest_from_standard_input()
    {
        var operatorDll = Path.Combine(AppContext.BaseDirectory, "deepseek-operator.dll");
        var start = new ProcessStartInfo("dotnet", [operatorDll, "render", "-f", "-", "--runtime-image", "runtime:test"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(Manifest.Replace("gpusPerPods", "gpusPerPod", StringComparison.Ordinal).Replace("maxRunningRequest:", "maxRunningRequests:", StringComparison.Ordinal));
        process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        Assert.True(process.ExitCode == 0, await stderr);
        Assert.Contains("kind: Deployment", await stdout, StringComparison.Ordinal);
    }

    /// <summary>Issue 28, defect 3: only the first model of a multi-document file was rendered, the others silently dropped.</summary>
    [Fact]
    public void Every_model_of_a_multi_document_file_is_rendered()
    {
        const string Two = """
            apiVersion: serving.deepseek-operator.io/v1alpha1
            kind: DeepSeekModel
            metadata:
              name: first
            spec:
              model:
                source:
                  pvc:
                    claimName: weights
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: serving
            ---
            apiVersion: serving.deepseek-operator.io/v1alpha1
            kind: DeepSeekModel
            metadata:
              name: second
            spec:
              model:
                source:
                  pvc:
                    claimName: weights
            """;
        var (yaml, errors) = RenderCommand.Render(Two, Defaults);
        Assert.Empty(errors);
        var deployments = Serialization.YamlJson.ParseAll(yaml!).Where(d => (string?)d?["kind"] == "Deployment").Select(d => (string?)d!["metadata"]!["name"]).ToList();
        Assert.Equal(["first", "second"], deployments);

        // An error in the second model says which document it is in.
        var (none, wrong) = RenderCommand.Render(Two.Replace("name: second", "name: Second_", StringComparison.Ordinal), Defaults);
        Assert.Null(none);
        Assert.StartsWith("document 3: ", Assert.Single(wrong).Field, StringComparison.Ordinal);
    }
}
