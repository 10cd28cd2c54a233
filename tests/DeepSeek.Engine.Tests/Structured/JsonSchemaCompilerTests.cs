using System.Diagnostics;
using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;

namespace DeepSeek.Engine.Tests.Structured;

/// <summary>The schema compiler and the byte-level automaton: which texts are prefixes, which are whole documents, what is refused.</summary>
public sealed class JsonSchemaCompilerTests
{
    internal static JsonNode Compile(string schema)
    {
        using var document = JsonDocument.Parse(schema, new JsonDocumentOptions { MaxDepth = 1000 });
        return JsonSchemaCompiler.Compile(document.RootElement, "response_format.json_schema.schema");
    }

    private static GrammarState Walk(JsonNode root, string text) => GrammarState.Initial(root).Step(Encoding.UTF8.GetBytes(text));

    private static void Whole(string schema, params string[] documents)
    {
        var root = Compile(schema);
        foreach (var document in documents)
        {
            var state = Walk(root, document);
            Assert.False(state.IsDead, $"'{document}' left the grammar of {schema}");
            Assert.True(state.IsComplete, $"'{document}' is not a whole document of {schema}");
            Assert.Equal(0, state.Distance);
            for (var i = 1; i < document.Length; i++)
                Assert.False(Walk(root, document[..i]).IsDead, $"prefix '{document[..i]}' refused");
        }
    }

    private static void Refused(string schema, params string[] texts)
    {
        var root = Compile(schema);
        foreach (var text in texts)
        {
            var state = Walk(root, text);
            Assert.True(state.IsDead || !state.IsComplete, $"'{text}' accepted as a document of {schema}");
        }
    }

    private static void Dead(string schema, params string[] texts)
    {
        var root = Compile(schema);
        foreach (var text in texts) Assert.True(Walk(root, text).IsDead, $"'{text}' should leave the grammar of {schema}");
    }

    private const string Person = """
        {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":2},
         "kind":{"enum":["a","b",3]},"ok":{"type":"boolean"},"none":{"type":"null"},"score":{"type":"number"}},
         "required":["name","age","tags","kind"],"additionalProperties":false}
        """;

    [Fact]
    public void An_object_schema_accepts_its_documents_in_schema_order_with_optional_properties_skipped()
    {
        Whole(Person,
            """{"name":"Ann","age":3,"tags":["x"],"kind":"a"}""",
            """{"name":"","age":-12,"tags":["x","y"],"kind":3,"ok":true,"none":null,"score":-1.5e+10}""",
            """{"name":"\u00e9\n\"","age":0,"tags":["é"],"kind":"b","score":0}""");
    }

    [Fact]
    public void An_object_schema_refuses_missing_required_extra_unordered_and_malformed_values()
    {
        Dead(Person,
            """{"age":""",               // a required property skipped
            """{"name":"a","extra""",    // a property not in the schema
            """{"name":"a","age":1.5""", // integer with a fraction
            """{"name":"a","age":01""",  // leading zero
            """{"name":"a","age":1,"tags":[]""", // minItems 1
            """{"name":"a","age":1,"tags":["a","b","c"]""", // maxItems 2
            """{"name":"a","age":1,"tags":["a"],"kind":"c""", // not in the enum
            """ {""", "{ ");             // no whitespace in the compact form
        Refused(Person, """{"name":"a","age":1,"tags":["a"]}""", """{"name":"a""");
    }

    [Fact]
    public void Numbers_are_bounded_so_they_parse_to_finite_doubles()
    {
        Whole("""{"type":"number"}""", "0", "-0", "123456789012345", "1.5", "1e99", "-2.25E-07");
        Dead("""{"type":"number"}""", "1234567890123456", "1e100", "1..", "--1", "+1");
        Refused("""{"type":"number"}""", "1.", "1e", "-");
    }

    [Fact]
    public void AnyOf_type_lists_const_and_nested_objects_compile()
    {
        Whole("""{"anyOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false},{"type":"object","properties":{"a":{"type":"integer"},"b":{"const":true}},"required":["a","b"],"additionalProperties":false}]}""",
            """{"a":"x"}""", """{"a":1,"b":true}""");
        Whole("""{"type":["string","null"]}""", "\"x\"", "null");
        Whole("""{"type":"object","properties":{"o":{"type":"object","properties":{"p":{"type":"array","items":{"type":"object","properties":{"q":{"const":{"k":[1,"two"]}}},"required":["q"]}}},"required":["p"]}},"required":["o"]}""",
            """{"o":{"p":[{"q":{"k":[1,"two"]}},{"q":{"k":[1,"two"]}}]}}""", """{"o":{"p":[]}}""");
        Dead("""{"type":["string","null"]}""", "1", "nul1");
    }

    [Fact]
    public void Json_object_and_an_object_without_properties_accept_any_object_only()
    {
        foreach (var schema in new[] { """{"type":"object"}""", """{"type":"object","additionalProperties":true}""" })
        {
            Whole(schema, "{}", """{"a":[1,{"b":null}],"c":"d","e":-0.5,"f":true}""");
            Dead(schema, "[", "\"x\"", "1");
        }
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"^a"}""", "response_format.json_schema.schema.pattern")]
    [InlineData("""{"type":"string","format":"date"}""", "response_format.json_schema.schema.format")]
    [InlineData("""{"$ref":"#/$defs/a","$defs":{"a":{"type":"string"}}}""", "response_format.json_schema.schema.$ref")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"integer","minimum":1}}}""", "response_format.json_schema.schema.properties.a.minimum")]
    [InlineData("""{"oneOf":[{"type":"string"}]}""", "response_format.json_schema.schema.oneOf")]
    [InlineData("""{"type":"object","additionalProperties":{"type":"string"}}""", "response_format.json_schema.schema.additionalProperties")]
    [InlineData("""{"type":"string","minLength":2}""", "response_format.json_schema.schema.minLength")]
    public void Unsupported_features_are_refused_naming_the_keyword(string schema, string param)
    {
        var error = Assert.Throws<InvalidRequestException>(() => Compile(schema));
        Assert.Equal(param, error.Param);
        Assert.Equal("unsupported_value", error.Code);
    }

    [Theory]
    [InlineData("""{"type":"strange"}""", "response_format.json_schema.schema.type")]
    [InlineData("""{"type":"array","minItems":3,"maxItems":2}""", "response_format.json_schema.schema.maxItems")]
    [InlineData("""{"enum":[]}""", "response_format.json_schema.schema.enum")]
    [InlineData("""{"type":"string","enum":[1,2]}""", "response_format.json_schema.schema")]
    [InlineData("7", "response_format.json_schema.schema")]
    public void Malformed_schemas_are_refused(string schema, string param)
    {
        var error = Assert.Throws<InvalidRequestException>(() => Compile(schema));
        Assert.Equal(param, error.Param);
    }

    [Fact]
    public void A_property_named_twice_is_refused()
    {
        // HTTP bodies refuse a duplicate key before; gRPC's json_schema text reaches the compiler as sent.
        var error = Assert.Throws<InvalidRequestException>(() => Compile("""{"type":"object","properties":{"a":{"type":"string"},"a":{"type":"integer"}},"required":["a"]}"""));
        Assert.Equal("response_format.json_schema.schema.properties", error.Param);
    }

    public static TheoryData<string> HostileSchemas()
    {
        var deep = new StringBuilder();
        for (var i = 0; i < 200; i++) deep.Append("""{"type":"array","items":""");
        deep.Append("""{"type":"string"}""").Append('}', 200);
        var hugeEnum = "{\"enum\":[" + string.Join(",", Enumerable.Range(0, 100_000).Select(i => $"\"value{i}\"")) + "]}";
        var longEnum = "{\"enum\":[\"" + new string('x', 100_000) + "\"]}";
        var wide = "{\"anyOf\":[" + string.Join(",", Enumerable.Range(0, 500).Select(_ => "{\"type\":\"string\"}")) + "]}";
        var many = "{\"type\":\"object\",\"properties\":{" + string.Join(",", Enumerable.Range(0, 5000).Select(i => $"\"p{i}\":{{\"type\":\"string\"}}")) + "}}";
        var minItems = """{"type":"array","items":{"type":"string"},"minItems":100000000}""";
        return [deep.ToString(), hugeEnum, longEnum, wide, many, minItems];
    }

    [Theory]
    [MemberData(nameof(HostileSchemas))]
    public void Hostile_schemas_are_refused_quickly(string schema)
    {
        var clock = Stopwatch.StartNew();
        Assert.Throws<InvalidRequestException>(() => Compile(schema));
        // Not a timing assertion: the refusal is a bound's, which the message says.
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public void The_distance_is_the_shortest_completion()
    {
        var root = Compile(Person);
        var shortest = """{"name":"","age":0,"tags":[""],"kind":3}""";
        Assert.Equal(shortest.Length, GrammarState.Initial(root).Distance);
        Assert.Equal(shortest.Length - 9, Walk(root, shortest[..9]).Distance);
        Assert.Equal(0, Walk(root, shortest).Distance);
    }
}
