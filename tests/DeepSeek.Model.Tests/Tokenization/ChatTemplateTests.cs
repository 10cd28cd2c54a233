using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Tests.Support;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Hosting;

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
        var error = Assert.Throws<ArgumentException>(() => ChatTemplate.Render([new("function", "{}")]));
        Assert.Contains("function", error.Message, StringComparison.Ordinal);
    }

    private static readonly ChatTool Weather = new("get_weather", "Weather of a city", """{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}""");

    private const string ToolsSection =
        "## Tools\n\nYou can call one or more of these functions to help with the user's request. "
        + "Their definitions, one JSON object a line, are between <tools> and </tools>:\n<tools>\n"
        + "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}\n"
        + "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}\n"
        + "</tools>\n\nTo call functions, write <｜tool▁calls▁begin｜>, then each call as "
        + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>FUNCTION_NAME\n```json\nARGUMENTS_AS_JSON\n```<｜tool▁call▁end｜>"
        + " (a line break between calls), and finally <｜tool▁calls▁end｜>.";

    [Fact]
    public void Offered_functions_end_the_system_prompt_one_json_object_a_line()
    {
        var text = ChatTemplate.Render([new("system", "Be brief."), new("user", "Weather in Paris?")], tools: [Weather, new ChatTool("now", null, null)]);
        Assert.Equal("<｜begin▁of▁sentence｜>Be brief.\n\n" + ToolsSection + "<｜User｜>Weather in Paris?<｜Assistant｜>", text);
        // Without a system message the section is the whole system prompt.
        Assert.StartsWith("<｜begin▁of▁sentence｜>## Tools\n\n", ChatTemplate.Render([new("user", "hi")], tools: [Weather]), StringComparison.Ordinal);
    }

    [Fact]
    public void Calls_and_their_outputs_render_in_deepseek_v3_format()
    {
        var text = ChatTemplate.Render(
        [
            new("user", "Weather in Paris and Rome?"),
            new("assistant", "", [new("get_weather", """{"city":"Paris"}"""), new("get_weather", """{"city":"Rome"}""")]),
            new("tool", "18C"),
            new("tool", "25C"),
            new("assistant", "Paris 18C, Rome 25C."),
            new("user", "And Oslo?"),
            new("assistant", "Let me check.", [new("get_weather", """{"city":"Oslo"}""")]),
            new("tool", "3C"),
        ]);
        Assert.Equal(
            "<｜begin▁of▁sentence｜><｜User｜>Weather in Paris and Rome?"
            + "<｜Assistant｜><｜tool▁calls▁begin｜>"
            + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\"}\n```<｜tool▁call▁end｜>\n"
            + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Rome\"}\n```<｜tool▁call▁end｜>"
            + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            + "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>18C<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>25C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"
            + "Paris 18C, Rome 25C.<｜end▁of▁sentence｜>"
            + "<｜User｜>And Oslo?"
            + "<｜Assistant｜>Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Oslo\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            + "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>3C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>",
            text);
    }

    private static readonly ChatMessage[] RoundTrip =
    [
        new("user", "Weather in <｜tool▁calls▁begin｜>Paris?"),
        new("assistant", "", [new("get_weather", """{"city":"Paris"}""")]),
        new("tool", "18C"),
    ];

    /// <summary>A byte-level tokenizer whose added tokens include every marker of the template, all special (as a real checkpoint's may be).</summary>
    private static BpeTokenizer WithToolMarkers()
    {
        string[] markers =
        [
            ChatTemplate.BeginOfSentence, ChatTemplate.EndOfSentence, ChatTemplate.User, ChatTemplate.Assistant,
            ChatTemplate.ToolCallsBegin, ChatTemplate.ToolCallBegin, ChatTemplate.ToolSep, ChatTemplate.ToolCallEnd, ChatTemplate.ToolCallsEnd,
            ChatTemplate.ToolOutputsBegin, ChatTemplate.ToolOutputBegin, ChatTemplate.ToolOutputEnd, ChatTemplate.ToolOutputsEnd,
        ];
        var vocab = Enumerable.Range(0, 256).ToDictionary(b => ByteLevelAlphabet.Encode([(byte)b]), b => b + markers.Length);
        var json = new
        {
            added_tokens = markers.Select((content, id) => new { id, content, special = true }).ToArray(),
            normalizer = (object?)null,
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            model = new { type = "BPE", vocab, merges = Array.Empty<string>() },
        };
        return BpeTokenizer.Parse(JsonSerializer.Serialize(json));
    }

    [Fact]
    public void Tool_markers_the_vocabulary_has_are_single_ids_and_client_text_spelling_them_is_not()
    {
        var tokenizer = WithToolMarkers();
        var ids = ChatTemplate.Encode(tokenizer, RoundTrip, tools: [Weather]);
        var begin = tokenizer.AddedTokenId(ChatTemplate.ToolCallsBegin)!.Value;
        // The system prompt's instructions and the assistant's call: the user's spelling of it stays text.
        Assert.Equal(2, ids.Count(id => id == begin));
        Assert.Equal(ChatTemplate.Render(RoundTrip, tools: [Weather]), tokenizer.Decode(ids));
        // Output is decoded skipping special tokens but keeping the call markers, which the parser reads.
        var output = tokenizer.Decode(ids, skipSpecialTokens: true, ChatTemplate.ToolCallMarkers);
        Assert.Contains(ChatTemplate.ToolCallsBegin + ChatTemplate.CallOpening("get_weather"), output, StringComparison.Ordinal);
        Assert.DoesNotContain(ChatTemplate.BeginOfSentence, output, StringComparison.Ordinal);
        Assert.DoesNotContain(ChatTemplate.ToolOutputsBegin, output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_forced_call_may_write_the_markers_as_the_vocabularys_own_tokens_and_they_decode_back_for_the_parser()
    {
        var tokenizer = WithToolMarkers();
        var vocabulary = EngineService.Vocabulary(tokenizer, DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)));
        var validator = new RequestValidator(tokenizer.Size, 4096, structuredOutputs: new StructuredOutputs(vocabulary));
        var tools = validator.CheckTools([new ToolDefinition("function", "now")], new ToolChoice("required"), parallel: false);
        var cursor = tools.Constraint!.Start();
        var allowed = new bool[tokenizer.Size];
        cursor.Allowed(1000, tokenizer.Size, allowed);
        Assert.True(allowed[tokenizer.AddedTokenId(ChatTemplate.ToolCallsBegin)!.Value]);
        Assert.True(allowed[tokenizer.Encode("<")[0]]);
        Assert.False(allowed[tokenizer.AddedTokenId(ChatTemplate.User)!.Value]);

        var text = ChatTemplate.ToolCallsBegin + ChatTemplate.CallOpening("now") + "{}" + ChatTemplate.ArgumentsClosing + ChatTemplate.ToolCallsEnd;
        var ids = tokenizer.Encode(text);
        Assert.Equal(5, ids.Count(id => id < 13)); // each of the five call markers one token
        cursor.Advance(ids);
        Assert.True(cursor.IsComplete);
        var parser = new ToolCallParser(tools.Callable);
        var events = parser.Feed(tokenizer.Decode(ids, skipSpecialTokens: true, ChatTemplate.ToolCallMarkers)).Concat(parser.Finish()).ToList();
        Assert.Equal([new(ToolCallEventKind.CallStarted, 0, "now"), new(ToolCallEventKind.Arguments, 0, "{}")], events);
    }

    [Fact]
    public void Where_the_vocabulary_lacks_the_tool_markers_they_are_encoded_as_the_text_they_spell()
    {
        var tokenizer = BpeTokenizer.Load(Path.Combine(Fixtures.Dir(Fixtures.V3Tiny), "tokenizer.json"));
        Assert.Null(tokenizer.AddedTokenId(ChatTemplate.ToolCallsBegin));
        var ids = ChatTemplate.Encode(tokenizer, RoundTrip, tools: [Weather]);
        Assert.Equal(tokenizer.Encode(ChatTemplate.Render(RoundTrip, tools: [Weather])), ids);
    }

    [Fact]
    public void Tool_outputs_followed_by_a_user_turn_close_their_block_first()
    {
        var text = ChatTemplate.Render(
        [
            new("user", "a"),
            new("assistant", "", [new("now", "{}")]),
            new("tool", "noon"),
            new("user", "b"),
        ]);
        Assert.EndsWith("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>noon<｜tool▁output▁end｜><｜tool▁outputs▁end｜><｜User｜>b<｜Assistant｜>", text, StringComparison.Ordinal);
    }
}
