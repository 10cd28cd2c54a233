using DeepSeek.Gateway.Keys;
using DeepSeek.Gateway.Tests.Infrastructure;

namespace DeepSeek.Gateway.Tests.EndToEnd;

/// <summary>
/// Two real runtimes on the embedded tiny model (the second serving it as <c>tiny-b</c>) behind one
/// gateway, shared by a test class: starting a runtime takes seconds. The public model <c>chat</c> splits
/// 50/50 over them; <c>deepseek-v3-tiny</c> is the first alone.
/// </summary>
public sealed class RuntimesBehindGateway : IAsyncLifetime
{
    public const string Key = "key-team-a";
    public const string LimitedKey = "key-limited";
    public const string TokenLimitedKey = "key-few-tokens";
    public const string ServedB = "tiny-b";

    public RuntimeProcess A { get; private set; } = null!;
    public RuntimeProcess B { get; private set; } = null!;
    public RunningGateway Gateway { get; private set; } = null!;
    public string AuditPath { get; } = Path.Combine(Path.GetTempPath(), $"gateway-audit-{Guid.NewGuid():N}.jsonl");

    public async Task InitializeAsync()
    {
        var a = RuntimeProcess.StartAsync();
        var b = RuntimeProcess.StartAsync("--served-name", ServedB);
        try
        {
            await Task.WhenAll(a, b);
        }
        finally
        {
            // Whichever started is kept for disposal, even when the other failed.
            if (a.IsCompletedSuccessfully) A = a.Result;
            if (b.IsCompletedSuccessfully) B = b.Result;
        }
        Gateway = await RunningGateway.StartAsync($$"""
            listen: {host: 127.0.0.1, port: 8080}
            models:
              - name: chat
                timeoutSeconds: 120
                routing: prefix
                cache: {ttlSeconds: 300, maxEntries: 100}
                variants:
                  - {name: a, weight: 50, endpoints: ["{{A.Url}}"], servedName: {{RuntimeProcess.TinyModel}}}
                  - {name: b, weight: 50, endpoints: ["{{B.Url}}"], servedName: {{ServedB}}}
              - name: {{RuntimeProcess.TinyModel}}
                routing: round-robin
                variants: [{name: main, endpoints: ["{{A.Url}}"]}]
            keys:
              - {id: team-a, sha256: {{KeyTable.HashHex(Key)}}}
              - {id: limited, sha256: {{KeyTable.HashHex(LimitedKey)}}, models: [{{RuntimeProcess.TinyModel}}], requestsPerMinute: 2}
              - {id: few-tokens, sha256: {{KeyTable.HashHex(TokenLimitedKey)}}, tokensPerMinute: 5}
            audit: {path: {{AuditPath}}}
            """);
    }

    public async Task DisposeAsync()
    {
        if (Gateway is not null) await Gateway.DisposeAsync();
        if (A is not null) await A.DisposeAsync();
        if (B is not null) await B.DisposeAsync();
        File.Delete(AuditPath);
    }
}
