using System.CommandLine;
using DeepSeek.Runtime.Cli;

namespace DeepSeek.Runtime.Tests.Cli;

/// <summary><c>--quantization</c> on every verb that loads or describes a model, read from DEEPSEEK_QUANTIZATION when absent.</summary>
public sealed class QuantizationOptionTests
{
    public static TheoryData<string> Verbs => new() { "serve", "generate", "bench", "inspect" };

    private static Command Verb(string name) => name switch
    {
        "serve" => ServeCommand.Build(),
        "generate" => GenerateCommand.Build(),
        "bench" => BenchCommand.Build(),
        _ => InspectCommand.Build(),
    };

    /// <summary>What a verb needs besides the option to parse without other errors (generate: one prompt).</summary>
    private static string[] Required(string verb) => verb == "generate" ? ["--prompt-ids", "1"] : [];

    [Theory]
    [MemberData(nameof(Verbs))]
    public void Every_model_verb_takes_the_option_with_its_variable_and_defaults_to_none(string verb)
    {
        var command = Verb(verb);
        var option = command.Options.Single(o => o.Name == "--quantization");
        Assert.Equal("DEEPSEEK_QUANTIZATION", EnvironmentDefault.VariableFor(option.Name));
        Assert.Contains("DEEPSEEK_QUANTIZATION", option.Description, StringComparison.Ordinal);
        Assert.Equal("none", command.Parse(Required(verb)).GetValue<string>("--quantization"));
        Assert.Equal("int4", command.Parse([.. Required(verb), "--quantization", "int4"]).GetValue<string>("--quantization"));
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void An_unknown_format_is_a_parse_error_naming_the_supported_ones(string verb)
    {
        var parse = Verb(verb).Parse([.. Required(verb), "--quantization", "int8"]);
        var error = Assert.Single(parse.Errors, e => e.Message.Contains("--quantization", StringComparison.Ordinal));
        Assert.Contains("int8 is not supported; use none or int4", error.Message, StringComparison.Ordinal);
    }
}
