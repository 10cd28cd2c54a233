using System.CommandLine;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>serve</c>: the long-running server a pod runs.</summary>
public static class ServeCommand
{
    public static Command Build()
    {
        var host = new Option<string>("--host")
        {
            Description = "Address to bind (IP address or localhost). Env: DEEPSEEK_HOST.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--host") ?? "0.0.0.0",
        };
        var httpPort = PortOption("--http-port", 8000, "HTTP port: OpenAI API, /health, /ready, /metrics.");
        var grpcPort = PortOption("--grpc-port", 50051, "gRPC port: inference, health, reflection.");
        var apiKey = new Option<string?>("--api-key")
        {
            Description = "Require 'Authorization: Bearer <key>' on /v1/* and gRPC Inference. Env: DEEPSEEK_API_KEY.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--api-key"),
        };
        var apiKeyFile = new Option<string?>("--api-key-file")
        {
            Description = "File whose first line is the API key (a mounted Secret). Env: DEEPSEEK_API_KEY_FILE.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString("--api-key-file"),
        };
        var maxRequestBytes = new Option<long>("--max-request-bytes")
        {
            Description = "Largest HTTP request body; larger ones get 413. Env: DEEPSEEK_MAX_REQUEST_BYTES.",
            DefaultValueFactory = _ => EnvironmentDefault.Get("--max-request-bytes", 8L * 1024 * 1024),
        };

        var command = new Command("serve", "Serve the model over HTTP (OpenAI-compatible) and gRPC.")
        {
            host, httpPort, grpcPort,
            apiKey, apiKeyFile, maxRequestBytes,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var settings = new ServeSettings
            {
                Host = parse.GetValue(host)!,
                HttpPort = parse.GetValue(httpPort),
                GrpcPort = parse.GetValue(grpcPort),
                ApiKey = parse.GetValue(apiKey),
                ApiKeyFile = parse.GetValue(apiKeyFile),
                MaxRequestBytes = parse.GetValue(maxRequestBytes),
            };
            await using var app = RuntimeHost.Build(settings);
            await app.RunAsync(cancellationToken);
            return 0;
        });
        return command;
    }

    private static Option<int> PortOption(string name, int fallback, string description)
    {
        var option = new Option<int>(name)
        {
            Description = $"{description} Env: {EnvironmentDefault.VariableFor(name)}.",
            DefaultValueFactory = _ => EnvironmentDefault.Get(name, fallback),
        };
        option.Validators.Add(result =>
        {
            var port = result.GetValueOrDefault<int>();
            if (port is < 0 or > 65535) result.AddError($"{name} must be between 0 and 65535, not {port}.");
        });
        return option;
    }
}
