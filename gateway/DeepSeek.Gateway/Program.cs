using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Hosting;

// deepseek-gateway --config FILE: the standalone gateway over the model table of FILE (design §7).
// Exit 2 on a usage or configuration mistake, saying every problem at once.
const string usage = "usage: deepseek-gateway --config FILE   (the YAML of docs/gateway.md)";
if (args is ["--version"])
{
    Console.WriteLine(GatewayHost.Version);
    return 0;
}
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(usage);
    return 0;
}
if (args is not ["--config", var path] || string.IsNullOrWhiteSpace(path))
{
    await Console.Error.WriteLineAsync(usage);
    return 2;
}
GatewayConfig config;
try
{
    config = ConfigFile.Load(path);
}
catch (GatewayConfigException e)
{
    await Console.Error.WriteLineAsync($"error: {e.Message}");
    return 2;
}
var app = GatewayHost.Build(config);
GatewayHost.LogStart(app, config);
await app.RunAsync();
return 0;
