using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Tests.Hosting;

public sealed class TerminationMessageTests
{
    [Fact]
    public void The_first_line_goes_to_the_file_the_kubelet_created()
    {
        var path = Path.GetTempFileName();
        try
        {
            TerminationMessage.Write("serve: deepseek_v3 does not fit cuda\n\n| format | EP |", path);
            Assert.Equal("serve: deepseek_v3 does not fit cuda", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_message_is_cut_to_what_the_kubelet_keeps()
    {
        var path = Path.GetTempFileName();
        try
        {
            TerminationMessage.Write(new string('é', 5000), path);
            Assert.InRange(new FileInfo(path).Length, TerminationMessage.MaxBytes - 1, TerminationMessage.MaxBytes);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Outside_a_pod_nothing_is_written()
    {
        var path = Path.Combine(Path.GetTempPath(), $"no-termination-log-{Guid.NewGuid():N}");
        TerminationMessage.Write("serve: anything", path);
        Assert.False(File.Exists(path));
    }
}
