using DeepSeek.Runtime.Cli;
using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Tests.Hosting;

/// <summary><c>serve --lora-modules NAME=DIR …</c> as vLLM writes it, and what <c>serve</c> refuses about it before anything loads.</summary>
public sealed class LoraModuleTests
{
    [Fact]
    public void Entries_are_name_equals_folder_given_as_several_arguments_or_one_variable()
    {
        var parse = ServeCommand.Build().Parse(["--lora-modules", "sql=/adapters/sql", "chat=/adapters/a=b", "--max-loras", "4"]);
        Assert.Empty(parse.Errors);
        var modules = LoraModule.ParseAll(parse.GetValue<string[]>("--lora-modules")!);
        Assert.Equal([new LoraModule("sql", "/adapters/sql"), new LoraModule("chat", "/adapters/a=b")], modules);
        Assert.Equal(4, parse.GetValue<int>("--max-loras"));
        Assert.Equal(16, parse.GetValue<int>("--max-lora-rank"));
        Assert.False(parse.GetValue<bool>("--enable-lora-updates"));
        // DEEPSEEK_LORA_MODULES holds the entries in one string.
        Assert.Equal(modules, LoraModule.ParseAll(["sql=/adapters/sql, chat=/adapters/a=b"]));
        Assert.Contains("NAME=DIR", Assert.Throws<ArgumentException>(() => LoraModule.Parse("sql")).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LoraModule.Parse("=/adapters/sql"));
    }

    [Fact]
    public void A_name_given_twice_the_base_models_name_and_an_expert_parallel_group_are_each_named()
    {
        var configuration = new ServeConfiguration
        {
            ModelDirectory = "/models",
            Engine = ServeConfiguration.Defaults.Engine with { ServedModelName = "base", MaxLoras = 0 },
            LoraModules = [new("a", "/x"), new("a", "/y"), new("base", "/z")],
            Parallel = new ExpertParallelSettings { WorldSize = 2, Peers = ExpertParallelSettings.ParsePeers("127.0.0.1:1001,127.0.0.1:1002") },
        };
        var message = Assert.Throws<ArgumentException>(() => configuration.Validate(nativeHelperPresent: false)).Message;
        Assert.Contains("--lora-modules names the adapter 'a' more than once.", message, StringComparison.Ordinal);
        Assert.Contains("adapter 'base' has the served model's name", message, StringComparison.Ordinal);
        Assert.Contains("--max-loras must be at least 1, got 0.", message, StringComparison.Ordinal);
        Assert.Contains("not served by an expert-parallel group", message, StringComparison.Ordinal);
        Assert.True(configuration.ServesLora);
        Assert.False(ServeConfiguration.Defaults.ServesLora);
    }
}
