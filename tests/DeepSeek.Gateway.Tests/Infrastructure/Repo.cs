namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>Paths in the repository these tests run from: the runtime's and the gateway's build outputs, the node clients.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    /// <summary>The configuration and framework these tests were built with (bin/Release/net10.0).</summary>
    private static (string Configuration, string Framework) Build
    {
        get
        {
            var framework = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            return (framework.Parent!.Name, framework.Name);
        }
    }

    public static string RuntimeDll => Output(Path.Combine("runtime", "DeepSeek.Runtime"), "deepseek-runtime.dll");

    public static string GatewayDll => Output(Path.Combine("gateway", "DeepSeek.Gateway"), "deepseek-gateway.dll");

    public static string ClientsDir => Path.Combine(Root, "tests", "clients");

    private static string Output(string project, string dll)
    {
        var (configuration, framework) = Build;
        var path = Path.Combine(Root, project, "bin", configuration, framework, dll);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing; build {project} in {configuration} first (scripts/test.sh builds the solution).");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekOperator.sln"))) return dir.FullName;
        throw new InvalidOperationException("Could not find the repository root (DeepSeekOperator.sln) above the test binaries.");
    }
}
