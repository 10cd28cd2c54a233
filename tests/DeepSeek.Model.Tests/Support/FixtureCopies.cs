namespace DeepSeek.Model.Tests.Support;

/// <summary>Fixture folders copied for tests that change them.</summary>
public static class FixtureCopies
{
    /// <summary>Copies a fixture folder into a fresh temporary folder, which the caller deletes.</summary>
    public static string CopyFixture(string name)
    {
        var target = Directory.CreateTempSubdirectory("deepseek-model-test-").FullName;
        foreach (var file in Directory.GetFiles(Fixtures.Dir(name)))
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }
}
