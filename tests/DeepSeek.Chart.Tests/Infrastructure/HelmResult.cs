namespace DeepSeek.Chart.Tests.Infrastructure;

/// <summary>What one helm invocation printed and returned.</summary>
public sealed record HelmResult(int ExitCode, string StandardOutput, string StandardError)
{
    public HelmResult EnsureSuccess(string what) =>
        ExitCode == 0
            ? this
            : throw new InvalidOperationException($"{what} failed with exit code {ExitCode}:\n{StandardError}\n{StandardOutput}");
}
