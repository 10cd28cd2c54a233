namespace DeepSeek.Operator.Tests.Support;

/// <summary>Files of the repository (crds/, samples/), found by walking up from the test's folder.</summary>
public static class RepositoryFiles
{
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DeepSeekOperator.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("DeepSeekOperator.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);
}
