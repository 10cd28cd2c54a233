using DeepSeek.Operator.Cli;

namespace DeepSeek.Operator.Tests.Cli;

public sealed class SchedulingFlagsTests
{
    [Theory]
    [InlineData("nvidia.com/gpu=present:NoSchedule", "nvidia.com/gpu", "Equal", "present", "NoSchedule")]
    [InlineData("nvidia.com/gpu:NoSchedule", "nvidia.com/gpu", "Exists", null, "NoSchedule")]
    [InlineData("dedicated=inference", "dedicated", "Equal", "inference", null)]
    public void Tolerations_follow_kubectl_taint_syntax(string text, string key, string op, string? value, string? effect)
    {
        var toleration = SchedulingFlags.ParseToleration(text);
        Assert.Equal((key, op, value, effect), (toleration.Key, toleration.OperatorProperty, toleration.Value, toleration.Effect));
    }

    [Theory]
    [InlineData("key:Sometimes")]
    [InlineData(":NoSchedule")]
    public void Bad_tolerations_say_what_to_write(string text) =>
        Assert.Contains("--default-toleration", Assert.Throws<FormatException>(() => SchedulingFlags.ParseToleration(text)).Message);

    [Fact]
    public void Node_selector_is_key_equals_value()
    {
        Assert.Equal(KeyValuePair.Create("gpu", "h100"), SchedulingFlags.ParseNodeSelector("gpu=h100"));
        Assert.Throws<FormatException>(() => SchedulingFlags.ParseNodeSelector("gpu"));
    }
}
