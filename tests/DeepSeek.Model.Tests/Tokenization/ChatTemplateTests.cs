using DeepSeek.Model.Tokenization;

namespace DeepSeek.Model.Tests.Tokenization;

public sealed class ChatTemplateTests
{
    [Fact]
    public void Renders_deepseek_v3_layout()
    {
        var text = ChatTemplate.Render(
        [
            new("system", "Be brief."),
            new("user", "Hi"),
            new("assistant", "<think>greet</think>Hello!"),
            new("system", "No emoji."),
            new("user", "Bye"),
        ]);
        Assert.Equal(
            "<｜begin▁of▁sentence｜>Be brief.\n\nNo emoji.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>",
            text);
    }

    [Fact]
    public void Without_generation_prompt_ends_after_last_message()
    {
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi", ChatTemplate.Render([new("user", "Hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void Unknown_role_is_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => ChatTemplate.Render([new("tool", "{}")]));
        Assert.Contains("tool", error.Message, StringComparison.Ordinal);
    }
}
