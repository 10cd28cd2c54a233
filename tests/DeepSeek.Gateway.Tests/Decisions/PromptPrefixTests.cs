using System.Text.Json;
using DeepSeek.Gateway.Routing;

namespace DeepSeek.Gateway.Tests.Decisions;

public sealed class PromptPrefixTests
{
    private static string? Of(string json) => PromptPrefix.From(JsonDocument.Parse(json).RootElement);

    [Fact]
    public void ChatMessagesGiveRolesAndTextInOrder()
    {
        Assert.Equal("system:be brief\nuser:hi\n", Of("""{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"""));
        Assert.Equal("user:ab\n", Of("""{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"""));
    }

    [Fact]
    public void PromptsOfEveryShapeGiveTheirFirstPrompt()
    {
        Assert.Equal("hello", Of("""{"prompt":"hello"}"""));
        Assert.Equal("first", Of("""{"prompt":["first","second"]}"""));
        Assert.Equal("1,2,3,", Of("""{"prompt":[1,2,3]}"""));
        Assert.Equal("4,5,", Of("""{"prompt":[[4,5],[6]]}"""));
        Assert.Equal("x", Of("""{"input":["x","y"]}"""));
    }

    [Fact]
    public void OnlyTheLeadingCharactersCount()
    {
        var longText = new string('a', 300);
        Assert.Equal(PromptPrefix.Characters, Of($$"""{"prompt":"{{longText}}b"}""")!.Length);
        Assert.Equal(Of($$"""{"prompt":"{{longText}}b"}"""), Of($$"""{"prompt":"{{longText}}c"}"""));
    }

    [Fact]
    public void NoPromptIsNull()
    {
        Assert.Null(Of("""{"model":"m"}"""));
        Assert.Null(Of("""{"messages":[]}"""));
        Assert.Null(Of("[]"));
    }
}
