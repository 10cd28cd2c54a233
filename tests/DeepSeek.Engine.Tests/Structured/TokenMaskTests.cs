using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Sampling;
using DeepSeek.Engine.Structured;
using static TorchSharp.torch;

namespace DeepSeek.Engine.Tests.Structured;

/// <summary>The token mask over a vocabulary of bytes and multi-byte tokens, the budget, the compile cache, and the sampler's use of it.</summary>
public sealed class TokenMaskTests
{
    private const int Eos = 1;

    /// <summary>Id 0 a special token (no bytes), 1 end-of-sequence, then every byte, then some merged tokens.</summary>
    internal static readonly string[] Merged = ["{\"", "\":", "\":\"", "\",\"", "\"}", "true", "false", "null", "name", "age", "12", "\"]", "],\"", " hello", "é", "\\n", "}}", "\"\"", "abc\"", "\":[", ",\""];

    internal static TokenVocabulary Vocabulary()
    {
        var bytes = new List<byte[]?> { null, null };
        for (var b = 0; b < 256; b++) bytes.Add([(byte)b]);
        bytes.AddRange(Merged.Select(Encoding.UTF8.GetBytes));
        return new TokenVocabulary(bytes, [Eos]);
    }

    private static readonly TokenVocabulary Shared = Vocabulary();

    private static string Text(IEnumerable<int> ids) => Encoding.UTF8.GetString([.. ids.Where(id => id != Eos).SelectMany(id => Shared.BytesOf(id)!)]);

    private static OutputConstraint Constraint(string schema) =>
        new StructuredOutputs(Shared).Compile(new ResponseFormat("json_schema", "t", schema))!;

    /// <summary>Random tokens among the allowed ones until end-of-sequence or the budget: what a random-weights model does under the mask.</summary>
    private static (string Text, bool Ended) Generate(OutputConstraint constraint, int maxTokens, Random random)
    {
        var cursor = constraint.Start();
        var output = new List<int>();
        var width = Shared.Size;
        var allowed = new bool[width];
        for (var step = 0; step < maxTokens; step++)
        {
            cursor.Advance(output);
            cursor.Allowed(maxTokens - step, width, allowed);
            var choices = Enumerable.Range(0, width).Where(i => allowed[i]).ToArray();
            Assert.NotEmpty(choices);
            var token = choices[random.Next(choices.Length)];
            output.Add(token);
            if (token == Eos) return (Text(output), true);
        }
        return (Text(output), false);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","bc"]},"maxItems":3}},"required":["name","age"],"additionalProperties":false}""", 40)]
    [InlineData("""{"type":"array","items":{"type":"object","properties":{"x":{"type":"number"},"y":{"anyOf":[{"type":"string"},{"type":"null"}]}},"required":["x","y"],"additionalProperties":false},"minItems":2}""", 40)]
    [InlineData("""{"type":"object"}""", 12)]
    [InlineData("""{"type":"object","properties":{"o":{"type":"object","properties":{"b":{"type":"boolean"}},"required":["b"]}},"required":["o"]}""", 16)]
    public void Random_choices_under_the_mask_always_end_in_a_valid_document_within_the_budget(string schema, int maxTokens)
    {
        var constraint = Constraint(schema);
        Assert.True(constraint.MinimumLength <= maxTokens);
        var random = new Random(7);
        for (var run = 0; run < 200; run++)
        {
            var (text, ended) = Generate(constraint, maxTokens, random);
            Assert.True(ended, $"run {run} did not end within {maxTokens} tokens: {text}");
            using var document = JsonDocument.Parse(text);
            Assert.Equal(schema.StartsWith("{\"type\":\"array\"", StringComparison.Ordinal) ? JsonValueKind.Array : JsonValueKind.Object, document.RootElement.ValueKind);
        }
    }

    [Fact]
    public void A_complete_document_allows_only_end_of_sequence_and_special_tokens_never()
    {
        var constraint = Constraint("""{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"],"additionalProperties":false}""");
        var cursor = constraint.Start();
        var ids = new List<int>();
        foreach (var b in Encoding.ASCII.GetBytes("{\"a\":true}")) ids.Add(2 + b);
        cursor.Advance(ids);
        Assert.True(cursor.IsComplete);
        var allowed = new bool[Shared.Size];
        cursor.Allowed(100, Shared.Size, allowed);
        Assert.Equal([Eos], Enumerable.Range(0, Shared.Size).Where(i => allowed[i]));

        var fresh = constraint.Start();
        fresh.Allowed(100, Shared.Size, allowed);
        Assert.False(allowed[0]);
        Assert.False(allowed[Eos]);
        Assert.True(allowed[2 + '{']);
        Assert.True(allowed[2 + 256]); // {"
        Assert.False(allowed[2 + '[']);
    }

    [Fact]
    public void Merged_tokens_are_allowed_only_where_their_whole_text_fits()
    {
        var constraint = Constraint("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""");
        var cursor = constraint.Start();
        cursor.Advance([2 + 256]); // {"
        var allowed = new bool[Shared.Size];
        cursor.Allowed(100, Shared.Size, allowed);
        var texts = Enumerable.Range(0, Shared.Size).Where(i => allowed[i]).Select(i => Encoding.UTF8.GetString(Shared.BytesOf(i)!)).ToHashSet();
        Assert.Equal(["n", "name"], texts.Order());
    }

    [Fact]
    public void A_tight_budget_keeps_only_tokens_that_can_still_close_the_document()
    {
        var constraint = Constraint("""{"type":"array","items":{"type":"string"}}""");
        var cursor = constraint.Start();
        cursor.Advance([2 + '[', 2 + '"', 2 + 'a']); // ["a — two bytes from a whole document: "]
        var allowed = new bool[Shared.Size];
        string[] Texts() => [.. Enumerable.Range(0, Shared.Size).Where(i => allowed[i]).Select(i => Encoding.UTF8.GetString(Shared.BytesOf(i)!)).Order()];
        // Two tokens left: this one must finish the document, the next is end-of-sequence.
        cursor.Allowed(2, Shared.Size, allowed);
        Assert.Equal(["\"]"], Texts());
        cursor.Allowed(3, Shared.Size, allowed);
        Assert.Contains("\"", Texts());
        Assert.Contains("abc\"", Texts());
        Assert.DoesNotContain("x", Texts());
        cursor.Allowed(50, Shared.Size, allowed);
        Assert.True(allowed[2 + 'x']);
    }

    [Fact]
    public void A_budget_below_the_shortest_document_is_set_aside_and_the_output_ends_at_length_unfinished()
    {
        var constraint = Constraint("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""");
        Assert.Equal("{\"name\":\"\"}".Length, constraint.MinimumLength);
        var (text, ended) = Generate(constraint, 5, new Random(1));
        Assert.False(ended);
        var state = GrammarState.Initial(constraint.Root).Step(Encoding.UTF8.GetBytes(text));
        Assert.False(state.IsDead, text); // a valid prefix, cut at the budget
        Assert.False(state.IsComplete, text);
    }

    [Fact]
    public void Masks_are_cached_per_state_and_schemas_compiled_once_per_normalised_text()
    {
        var outputs = new StructuredOutputs(Shared);
        var a = outputs.Compile(new ResponseFormat("json_schema", "a", """{"type": "object", "properties": {"x": {"type": "string"}}}"""));
        var b = outputs.Compile(new ResponseFormat("json_schema", "b", """{"type":"object","properties":{"x":{"type":"string"}}}"""));
        Assert.Same(a, b);
        Assert.Equal(1, outputs.Compilations);
        Assert.Null(outputs.Compile(ResponseFormat.Text));
        Assert.NotNull(outputs.Compile(new ResponseFormat("json_object")));

        var random = new Random(3);
        for (var i = 0; i < 20; i++) Generate(a!, 30, random);
        Assert.True(a!.MasksCached > a.MasksComputed, $"{a.MasksCached} cached, {a.MasksComputed} computed");
    }

    [Theory]
    [InlineData("json_schema", null, "response_format.json_schema.schema", "invalid_value")]
    [InlineData("json_schema", "{not json", "response_format.json_schema.schema", "invalid_value")]
    [InlineData("xml", null, "response_format.type", "unsupported_value")]
    [InlineData("text", "{}", "response_format.json_schema.schema", "invalid_value")]
    [InlineData("json_object", "{}", "response_format.json_schema.schema", "invalid_value")]
    public void Response_formats_are_refused_naming_the_field(string type, string? schema, string param, string code)
    {
        var error = Assert.Throws<InvalidRequestException>(() => new StructuredOutputs(Shared).Compile(new ResponseFormat(type, "n", schema)));
        Assert.Equal(param, error.Param);
        Assert.Equal(code, error.Code);
    }

    [Fact]
    public void Schema_options_with_another_type_are_refused_naming_them()
    {
        var error = Assert.Throws<InvalidRequestException>(() => new StructuredOutputs(Shared).Compile(new ResponseFormat("text", "n", OptionsSent: true)));
        Assert.Equal("response_format.json_schema", error.Param);
    }

    [Fact]
    public void A_schema_larger_than_the_bound_is_refused_before_it_is_parsed()
    {
        var schema = "{\"enum\":[\"" + new string('x', StructuredOutputs.MaxSchemaBytes) + "\"]}";
        var error = Assert.Throws<InvalidRequestException>(() => new StructuredOutputs(Shared).Compile(new ResponseFormat("json_schema", "n", schema)));
        Assert.Contains("larger than", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_validator_refuses_min_tokens_with_a_constraint_and_json_without_a_tokenizer()
    {
        var constraint = Constraint("""{"type":"string"}""");
        var validator = new RequestValidator(Shared.Size, 1000, structuredOutputs: new StructuredOutputs(Shared));
        var error = Assert.Throws<InvalidRequestException>(() => validator.CheckSampling(new SamplingParameters { Constraint = constraint, MinTokens = 2 }, RequestFields.Completions));
        Assert.Equal("min_tokens", error.Param);
        var bare = new RequestValidator(Shared.Size, 1000);
        Assert.Null(bare.CheckResponseFormat(ResponseFormat.Text));
        Assert.Equal("unsupported_value", Assert.Throws<InvalidRequestException>(() => bare.CheckResponseFormat(new ResponseFormat("json_object"))).Code);
    }

    [Fact]
    public void The_sampler_masks_only_constrained_rows_of_a_batch()
    {
        using var scope = NewDisposeScope();
        var constraint = Constraint("""{"type":"object","properties":{"a":{"type":"null"}},"required":["a"],"additionalProperties":false}""");
        var vocab = Shared.Size;
        // The model prefers token 5 everywhere; under the constraint only '{' or '{"' may come first.
        var row = Enumerable.Range(0, vocab).Select(i => i == 5 ? 10f : 0f).ToArray();
        var logits = tensor(row.Concat(row).Concat(row).ToArray()).view(3, vocab);
        var requests = new[]
        {
            new EngineRequest("free", [7], SamplingParameters.Greedy with { MaxTokens = 20 }),
            new EngineRequest("json", [7], SamplingParameters.Greedy with { MaxTokens = 20, Constraint = constraint }),
            new EngineRequest("sampled", [7], new SamplingParameters { Seed = 1, MaxTokens = 20, Constraint = constraint }),
        };
        var sampler = new Sampler([Eos]);
        var tokens = sampler.Sample(logits, requests);
        Assert.Equal(5, tokens[0].TokenId);
        Assert.Contains(Encoding.UTF8.GetString(Shared.BytesOf(tokens[1].TokenId)!), new[] { "{", "{\"" });
        Assert.Contains(Encoding.UTF8.GetString(Shared.BytesOf(tokens[2].TokenId)!), new[] { "{", "{\"" });
        // The step's mask time is kept for benchmarks (StepTiming.MaskElapsed), and is none without constrained rows.
        Assert.True(sampler.LastMaskElapsed > TimeSpan.Zero);
        sampler.Sample(logits.narrow(0, 0, 1), [requests[0]]);
        Assert.Equal(TimeSpan.Zero, sampler.LastMaskElapsed);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","bc"]},"maxItems":3}},"required":["name","age"],"additionalProperties":false}""")]
    [InlineData("""{"type":"object"}""")]
    public void The_device_mask_is_the_complement_of_the_host_mask_at_every_budget_width_and_state(string schema)
    {
        using var scope = NewDisposeScope();
        var constraint = Constraint(schema);
        var random = new Random(7);
        // A bound of three rows: the walk keeps evicting, and a step needing more than fit still gets them.
        using var masks = new ConstraintMasks(cacheBytes: 3L * Shared.Size);
        foreach (var width in new[] { Shared.Size, Shared.Size - 5 })
        {
            // Several cursors at once (rows of one step), one of them driven dead by a token the mask refuses.
            var cursors = Enumerable.Range(0, 5).Select(_ => constraint.Start()).ToArray();
            var outputs = cursors.Select(_ => new List<int>()).ToArray();
            outputs[4].Add(Shared.Size - 1);  // the merged token `,"` cannot open a document
            for (var step = 0; step < 30; step++)
            {
                var budgets = cursors.Select((_, r) => 1 + ((step * 7) + (r * 3)) % 12).ToArray();
                var allowed = AssertSameMasks(masks, cursors, outputs, budgets, width);
                Assert.True(cursors[4].IsDead);
                // The next token of each live row: a random allowed one other than end-of-sequence while there is any.
                for (var r = 0; r < 4; r++)
                {
                    var choices = Enumerable.Range(0, width).Where(id => allowed[r][id] && id != Eos).ToArray();
                    if (choices.Length > 0) outputs[r].Add(choices[random.Next(choices.Length)]);
                }
            }
        }
        Assert.True(masks.RowsHeld <= 5, $"{masks.RowsHeld} rows held past the bound of 3 and a step of 5");
        Assert.True(masks.RowsUploaded > 5);
    }

    [Fact]
    public void Budgets_that_bind_past_the_saturated_distances_are_masked_exactly()
    {
        using var scope = NewDisposeScope();
        // The shortest document is some two thousand bytes: distances far beyond a byte's reach.
        var constraint = Constraint("""{"type":"array","items":{"type":"object","properties":{"s":{"type":"string"}},"required":["s"],"additionalProperties":false},"minItems":200}""");
        using var masks = new ConstraintMasks();
        // One row inside the first string, where tokens leave different distances (a letter, a closing quote,
        // a quote and brace), one at the start.
        int Id(string text) => text.Length == 1 ? 2 + text[0] : 2 + 256 + Array.IndexOf(Merged, text);
        var inString = new List<int> { Id("["), Id("{\""), Id("s"), Id("\":\"") };
        var cursors = new[] { constraint.Start(), constraint.Start() };
        var outputs = new[] { inString, new List<int>() };
        cursors[0].Advance(inString);
        var distance = cursors[0].Distance;
        Assert.True(distance > 1000, $"distance {distance}");
        // Budgets around the distance (the one to the saturation too): some of the row's tokens fit, some do not.
        foreach (var budget in new[] { 1, 253, 254, 255, 256, distance - 1, distance, distance + 1, distance + 2, distance + 3, 5000 })
            AssertSameMasks(masks, cursors, outputs, [budget, budget], Shared.Size);
    }

    [Fact]
    public void Rows_of_ever_new_schemas_keep_few_constraints_alive()
    {
        using var scope = NewDisposeScope();
        using var masks = new ConstraintMasks();
        var width = Shared.Size;
        for (var i = 0; i < 3 * ConstraintMasks.MaxConstraints; i++)
        {
            // A new schema each time, as a client sending unique keys would.
            var cursor = Constraint("""{"type":"object","properties":{"NAME":{"type":"null"}},"required":["NAME"],"additionalProperties":false}""".Replace("NAME", $"p{i}", StringComparison.Ordinal)).Start();
            AssertSameMasks(masks, [cursor], [[]], [50], width);
            Assert.InRange(masks.ConstraintsHeld, 1, ConstraintMasks.MaxConstraints);
        }
        Assert.Equal(3 * ConstraintMasks.MaxConstraints, masks.RowsUploaded);
    }

    /// <summary>Each cursor's device mask row equals its host mask at its budget; returns the host masks.</summary>
    private static bool[][] AssertSameMasks(ConstraintMasks masks, ConstraintCursor[] cursors, List<int>[] outputs, int[] budgets, int width)
    {
        var rules = new MaskRule[cursors.Length];
        for (var r = 0; r < cursors.Length; r++)
        {
            cursors[r].Advance(outputs[r]);
            rules[r] = cursors[r].Next(budgets[r], width);
        }
        var refused = masks.Refused(rules, width, CPU);
        Assert.Equal(new long[] { cursors.Length, width }, refused.shape);
        var device = refused.data<bool>().ToArray();
        var host = new bool[cursors.Length][];
        for (var r = 0; r < cursors.Length; r++)
        {
            host[r] = new bool[width];
            cursors[r].Allowed(budgets[r], width, host[r]);
            for (var id = 0; id < width; id++)
                Assert.True(host[r][id] != device[(r * width) + id], $"row {r}, budget {budgets[r]}, width {width}, id {id}: host {host[r][id]}");
        }
        return host;
    }
}
