using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Engine.Tests.Structured;

/// <summary>The grammar of a forced tool call, random choices under its mask read back by the parser, and the rules on tools and tool_choice.</summary>
public sealed class ToolCallGrammarTests
{
    private const int Eos = 1;

    private static readonly ToolDefinition Weather = new("function", "get_weather", "Weather of a city",
        """{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"unit":{"enum":["C","F"]}},"required":["city","unit"],"additionalProperties":false}""");

    private static readonly ToolDefinition Time = new("function", "get_time", null, null);

    /// <summary>Bytes, some merged JSON tokens, and the tool-call markers as single tokens, as a vocabulary that has them as added tokens gives them.</summary>
    private static readonly TokenVocabulary Vocabulary = CreateVocabulary();

    private static TokenVocabulary CreateVocabulary()
    {
        var bytes = new List<byte[]?> { null, null };
        for (var b = 0; b < 256; b++) bytes.Add([(byte)b]);
        bytes.AddRange(TokenMaskTests.Merged.Select(Encoding.UTF8.GetBytes));
        bytes.AddRange(ChatTemplate.ToolCallMarkers.Select(Encoding.UTF8.GetBytes));
        return new TokenVocabulary(bytes, [Eos]);
    }

    private static RequestValidator Validator(StructuredOutputs? outputs = null) => new(vocabSize: Vocabulary.Size, maxContextTokens: 4096, structuredOutputs: outputs ?? new StructuredOutputs(Vocabulary));

    private static JsonNode Grammar(bool parallel, params string[] callable) =>
        ToolCallGrammar.Compile([Weather, Time], new HashSet<string>(callable, StringComparer.Ordinal), parallel);

    private static string Call(string name, string arguments) => ChatTemplate.CallOpening(name) + arguments + ChatTemplate.ArgumentsClosing;

    private static string Block(params string[] calls) => ChatTemplate.ToolCallsBegin + string.Join(ChatTemplate.CallSeparator, calls) + ChatTemplate.ToolCallsEnd;

    private static GrammarState Walk(JsonNode root, string text) => GrammarState.Initial(root).Step(Encoding.UTF8.GetBytes(text));

    private static void Whole(JsonNode root, string text)
    {
        var state = Walk(root, text);
        Assert.True(state.IsComplete, $"not a whole call text: {text}");
        Assert.Equal(0, state.Distance);
        var bytes = Encoding.UTF8.GetBytes(text);
        var walk = GrammarState.Initial(root);
        foreach (var b in bytes)
        {
            walk = walk.Step(b);
            Assert.False(walk.IsDead, $"a prefix of {text} was refused");
        }
    }

    private static void Refused(JsonNode root, string text)
    {
        var state = Walk(root, text);
        Assert.True(state.IsDead || !state.IsComplete, $"accepted: {text}");
    }

    [Fact]
    public void One_call_of_a_callable_function_with_arguments_of_its_schema_is_whole()
    {
        var root = Grammar(parallel: false, "get_weather", "get_time");
        Whole(root, Block(Call("get_weather", """{"city":"Paris","unit":"C"}""")));
        Whole(root, Block(Call("get_weather", """{"city":"Oslo","days":3,"unit":"F"}""")));
        Whole(root, Block(Call("get_time", "{}")));
        Refused(root, Block(Call("get_weather", """{"city":"Paris"}""")));            // unit is required
        Refused(root, Block(Call("get_weather", """{"city":"Paris","unit":"K"}""")));  // not in the enum
        Refused(root, Block(Call("get_time", """{"zone":"CET"}""")));                // no parameters: {}
        Refused(root, Block(Call("get_wether", "{}")));
        Refused(root, Block(Call("get_time", "{}"), Call("get_time", "{}")));        // one call without parallel_tool_calls
        Refused(root, ChatTemplate.ToolCallsBegin + ChatTemplate.ToolCallsEnd);     // at least one call
        Refused(root, "Sure! " + Block(Call("get_time", "{}")));
    }

    [Fact]
    public void Parallel_calls_are_one_or_more_a_line_apart_and_a_named_choice_allows_only_that_function()
    {
        var parallel = Grammar(parallel: true, "get_weather", "get_time");
        Whole(parallel, Block(Call("get_time", "{}"), Call("get_weather", """{"city":"Rome","unit":"C"}"""), Call("get_time", "{}")));
        Refused(parallel, ChatTemplate.ToolCallsBegin + Call("get_time", "{}") + Call("get_time", "{}") + ChatTemplate.ToolCallsEnd);
        var named = Grammar(parallel: false, "get_time");
        Whole(named, Block(Call("get_time", "{}")));
        Refused(named, Block(Call("get_weather", """{"city":"Paris","unit":"C"}""")));
    }

    /// <summary>What a random-weights model does under the mask: any allowed token, until end-of-sequence or the budget.</summary>
    private static (string Text, bool Ended) Generate(OutputConstraint constraint, int maxTokens, Random random)
    {
        var cursor = constraint.Start();
        var output = new List<int>();
        var allowed = new bool[Vocabulary.Size];
        for (var step = 0; step < maxTokens; step++)
        {
            cursor.Advance(output);
            cursor.Allowed(maxTokens - step, Vocabulary.Size, allowed);
            var choices = Enumerable.Range(0, Vocabulary.Size).Where(i => allowed[i]).ToArray();
            Assert.NotEmpty(choices);
            var token = choices[random.Next(choices.Length)];
            output.Add(token);
            if (token == Eos) break;
        }
        var ended = output[^1] == Eos;
        return (Encoding.UTF8.GetString([.. output.Where(id => id != Eos).SelectMany(id => Vocabulary.BytesOf(id)!)]), ended);
    }

    [Theory]
    [InlineData("required", true)]
    [InlineData("required", false)]
    [InlineData(null, false)]
    public void Random_choices_under_the_mask_always_end_in_calls_the_parser_reads_and_their_schemas_accept(string? mode, bool parallel)
    {
        var checkedTools = Validator().CheckTools([Weather, Time], new ToolChoice(mode, mode is null ? "get_weather" : null), parallel);
        var constraint = checkedTools.Constraint!;
        var random = new Random(11);
        for (var run = 0; run < 100; run++)
        {
            var (text, ended) = Generate(constraint, 400, random);
            Assert.True(ended, $"run {run} did not end: {text}");
            var parser = new ToolCallParser(checkedTools.Callable);
            var events = parser.Feed(text).Concat(parser.Finish()).ToList();
            Assert.DoesNotContain(events, e => e.Kind == ToolCallEventKind.Content);
            Assert.True(parser.CallCount >= 1 && (parallel || parser.CallCount == 1), $"run {run}: {parser.CallCount} calls in {text}");
            for (var call = 0; call < parser.CallCount; call++)
            {
                var name = events.Single(e => e.Kind == ToolCallEventKind.CallStarted && e.Index == call).Text;
                var arguments = string.Concat(events.Where(e => e.Kind == ToolCallEventKind.Arguments && e.Index == call).Select(e => e.Text));
                using var document = JsonDocument.Parse(arguments);
                if (name == "get_weather")
                {
                    Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("city").ValueKind);
                    Assert.Contains(document.RootElement.GetProperty("unit").GetString(), new[] { "C", "F" });
                }
                else
                {
                    Assert.Equal("get_time", name);
                    Assert.Empty(document.RootElement.EnumerateObject());
                    Assert.NotNull(mode);
                }
            }
        }
    }

    [Fact]
    public void Auto_offers_and_parses_every_function_without_a_constraint_and_none_offers_nothing()
    {
        var auto = Validator().CheckTools([Weather, Time], null, parallel: true);
        Assert.Null(auto.Constraint);
        Assert.Equal(["get_weather", "get_time"], auto.Offered.Select(t => t.Name));
        Assert.Equal(["get_time", "get_weather"], auto.Callable.Order(StringComparer.Ordinal));
        Assert.Equal(Weather.ParametersJson, auto.Offered[0].ParametersJson);

        var none = Validator().CheckTools([Weather, Time], new ToolChoice("none"), parallel: true);
        Assert.Same(CheckedTools.None, none);
        Assert.Same(CheckedTools.None, Validator().CheckTools(null, null, parallel: true));
        Assert.Same(CheckedTools.None, Validator().CheckTools(null, new ToolChoice("none"), parallel: true));

        var named = Validator().CheckTools([Weather, Time], new ToolChoice(null, "get_time"), parallel: true);
        Assert.Equal(["get_time"], named.Callable);
        Assert.Equal(2, named.Offered.Count);
        Assert.NotNull(named.Constraint);
    }

    [Fact]
    public void The_call_grammar_is_compiled_once_per_tools_and_choice()
    {
        var outputs = new StructuredOutputs(Vocabulary);
        var validator = Validator(outputs);
        var first = validator.CheckTools([Weather, Time], new ToolChoice("required"), parallel: true).Constraint;
        var again = validator.CheckTools([Weather with { }, Time], new ToolChoice("required"), parallel: true).Constraint;
        Assert.Same(first, again);
        Assert.NotSame(first, validator.CheckTools([Weather, Time], new ToolChoice("required"), parallel: false).Constraint);
        Assert.NotSame(first, validator.CheckTools([Weather, Time], new ToolChoice(null, "get_weather"), parallel: true).Constraint);
        Assert.Equal(3, outputs.Compilations);
    }

    public static TheoryData<string, ToolDefinition[]?, ToolChoice?, string, string> Refusals => new()
    {
        { "tool_choice without tools", null, new ToolChoice("required"), "tool_choice", "invalid_value" },
        { "empty tools", [], null, "tools", "invalid_value" },
        { "no type", [Weather with { Type = null }], null, "tools[0].type", "invalid_value" },
        { "another type", [Time, Weather with { Type = "code_interpreter" }], null, "tools[1].type", "unsupported_value" },
        { "no name", [Weather with { Name = null }], null, "tools[0].function.name", "invalid_value" },
        { "a name with a space", [Weather with { Name = "get weather" }], null, "tools[0].function.name", "invalid_value" },
        { "a name too long", [Weather with { Name = new string('a', 65) }], null, "tools[0].function.name", "invalid_value" },
        { "a name twice", [Time, Weather, Time], null, "tools[2].function.name", "invalid_value" },
        { "an unsupported keyword", [Time, Weather with { ParametersJson = """{"type":"object","properties":{"city":{"type":"string","pattern":"^[A-Z]"}}}""" }], null,
            "tools[1].function.parameters.properties.city.pattern", "unsupported_value" },
        { "parameters not of an object", [Weather with { ParametersJson = """{"type":"string"}""" }], null, "tools[0].function.parameters", "invalid_value" },
        { "parameters not JSON", [Weather with { ParametersJson = "{" }], null, "tools[0].function.parameters", "invalid_value" },
        { "an unknown mode", [Weather], new ToolChoice("always"), "tool_choice", "invalid_value" },
        { "an unknown function named", [Weather], new ToolChoice(null, "get_time"), "tool_choice.function.name", "invalid_value" },
        { "an unsupported keyword even with none", [Weather with { ParametersJson = """{"type":"object","minProperties":1}""" }], new ToolChoice("none"),
            "tools[0].function.parameters.minProperties", "unsupported_value" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Bad_tools_and_choices_are_refused_naming_the_field(string why, ToolDefinition[]? tools, ToolChoice? choice, string param, string code)
    {
        var error = Assert.Throws<InvalidRequestException>(() => Validator().CheckTools(tools, choice, parallel: true));
        Assert.True(param == error.Param, $"{why}: {error.Param}: {error.Message}");
        Assert.Equal(code, error.Code);
    }

    [Fact]
    public void A_forced_call_cannot_share_the_output_with_a_json_response_format_nor_take_min_tokens()
    {
        var outputs = new StructuredOutputs(Vocabulary);
        var format = outputs.Compile(new ResponseFormat("json_object"));
        var error = Assert.Throws<InvalidRequestException>(() => Validator(outputs).CheckTools([Weather], new ToolChoice("required"), parallel: true, format));
        Assert.Equal("tool_choice", error.Param);
        // auto leaves the output to the format: a call is then simply not made.
        Assert.Null(Validator(outputs).CheckTools([Weather], null, parallel: true, format).Constraint);

        var forced = Validator().CheckTools([Weather], new ToolChoice("required"), parallel: true).Constraint;
        var minTokens = Assert.Throws<InvalidRequestException>(() => Validator().CheckSampling(new SamplingParameters { Constraint = forced, MinTokens = 3 }, RequestFields.Completions));
        Assert.Equal("min_tokens", minTokens.Param);
    }

    [Fact]
    public void Without_a_tokenizer_tools_are_refused()
    {
        var error = Assert.Throws<InvalidRequestException>(() => new RequestValidator(100, 100).CheckTools([Weather], null, parallel: true));
        Assert.Equal("tools", error.Param);
        Assert.Equal("unsupported_value", error.Code);
    }
}
