using DeepSeek.Model.Native;

namespace DeepSeek.Model.Tests.Native;

/// <summary>The helper is optional: every way of not having it is reported, none is fatal.</summary>
public sealed class NativeHelperLoadingTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("deepseek-native-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void An_absent_library_is_reported_with_where_it_was_looked_for_and_how_to_build_it()
    {
        var helper = NativeHelper.TryLoad(out var reason, _directory);

        Assert.Null(helper);
        Assert.Contains(NativeHelper.LibraryFileName, reason, StringComparison.Ordinal);
        Assert.Contains(_directory, reason, StringComparison.Ordinal);
        Assert.Contains("scripts/build-native.sh", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_default_location_is_next_to_the_executable()
    {
        // The test output folder has no helper (CPU build), so the default search reports that folder.
        var helper = NativeHelper.TryLoad(out var reason);

        Assert.Null(helper);
        Assert.Contains(AppContext.BaseDirectory.TrimEnd('/'), reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_a_shared_library_is_reported_not_thrown()
    {
        File.WriteAllText(Path.Combine(_directory, NativeHelper.LibraryFileName), "not an ELF file");

        var helper = NativeHelper.TryLoad(out var reason, _directory);

        Assert.Null(helper);
        Assert.Contains("did not load", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_shared_library_that_is_not_the_helper_is_reported_by_its_missing_entry_point()
    {
        // A real shared library of this machine that exports none of the helper's functions.
        var other = new[] { "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib64/libz.so.1" }.FirstOrDefault(File.Exists);
        Assert.True(other is not null, "no libz.so.1 on this machine to stand in for a foreign library");
        File.Copy(other, Path.Combine(_directory, NativeHelper.LibraryFileName));

        var helper = NativeHelper.TryLoad(out var reason, _directory);

        Assert.Null(helper);
        Assert.Contains("dsn_abi_version", reason, StringComparison.Ordinal);
    }
}
