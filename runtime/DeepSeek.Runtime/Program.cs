using DeepSeek.Runtime.Cli;

return await RuntimeCli.Build().Parse(args).InvokeAsync();
