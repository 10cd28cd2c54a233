using DeepSeek.Operator.Cli;

return await OperatorCli.Build().Parse(args).InvokeAsync();
