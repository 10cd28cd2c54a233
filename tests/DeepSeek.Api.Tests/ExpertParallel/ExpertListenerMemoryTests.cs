using System.Buffers.Binary;
using System.Net;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Engine;
using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>Alone in the process while it runs: its probes count the bytes the whole process allocates.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryProbes
{
    public const string Name = "memory probes";
}

/// <summary>
/// Issue #27 item 2: a rank read whole messages of up to 512 MiB before it checked the group token,
/// and that limit held on every listener of the process. One in-process rank of a two-rank group (its
/// leader never started) and oversized calls streamed from a reused buffer, so the bytes the process
/// allocates during a call are the server's. Measured with the runtime's allocation counter, not time.
/// </summary>
[Collection(MemoryProbes.Name)]
public sealed class ExpertListenerMemoryTests : IAsyncLifetime
{
    private const string Token = "group-token-for-memory-probes";
    /// <summary>Far above the 4 MiB gRPC default and far below the old 512 MiB limit.</summary>
    private const int OversizedBytes = 48 * 1024 * 1024;

    private static string FixtureDir => Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny");

    private WebApplication _rank = null!;
    private ServeConfiguration _settings = null!;

    public async Task InitializeAsync()
    {
        var expertPort = FreePort.Next();
        _settings = new ServeConfiguration
        {
            Host = "127.0.0.1",
            HttpPort = FreePort.Next(),
            GrpcPort = FreePort.Next(),
            Parallel = new ExpertParallelSettings
            {
                Rank = 1,
                WorldSize = 2,
                Peers = [new DnsEndPoint("127.0.0.1", FreePort.Next()), new DnsEndPoint("127.0.0.1", expertPort)],
                ExpertPort = expertPort,
                GroupToken = Token,
            },
            ModelDirectory = FixtureDir,
            DType = TorchSharp.torch.ScalarType.Float32,
            Engine = new EngineOptions { MaxBatchTokens = 64 },
            DrainTimeout = TimeSpan.FromSeconds(5),
        };
        _rank = RuntimeHost.Build(_settings, ModelFolder.Open(FixtureDir, _settings.DType, _settings.Quantization));
        await _rank.StartAsync();
        // The shard loads on start; its allocations must be over before anything is measured.
        var readiness = _rank.Services.GetRequiredService<Readiness>();
        await Eventually.HoldsAsync(() => Task.FromResult(readiness.IsReady), TimeSpan.FromSeconds(60), "the rank loaded its shard");
    }

    public async Task DisposeAsync()
    {
        await _rank.StopAsync();
        await _rank.DisposeAsync();
    }

    [Fact]
    public async Task An_unauthenticated_oversized_compute_is_refused_before_its_body_is_read()
    {
        var (allocated, status) = await ProbeAsync(_settings.Parallel.ExpertPort, "/deepseek.runtime.v1.Experts/Compute", authorization: null);
        Assert.True(allocated < OversizedBytes / 4, $"the rank allocated {allocated:N0} bytes for a refused {OversizedBytes:N0}-byte message");
        Assert.True(status is null || status.StartsWith("16|", StringComparison.Ordinal), $"grpc-status {status}, expected UNAUTHENTICATED (16)");
    }

    [Fact]
    public async Task A_member_message_beyond_one_layers_exchange_is_refused_unread()
    {
        // The bound for this model and batch is far below the message: it is refused from its length prefix.
        var (allocated, status) = await ProbeAsync(_settings.Parallel.ExpertPort, "/deepseek.runtime.v1.Experts/Compute", authorization: $"Bearer {Token}");
        Assert.True(allocated < OversizedBytes / 4, $"the rank allocated {allocated:N0} bytes for a refused {OversizedBytes:N0}-byte message");
        Assert.True(status is null || status.StartsWith("8|", StringComparison.Ordinal), $"grpc-status {status}, expected RESOURCE_EXHAUSTED (8)");
    }

    [Fact]
    public async Task An_oversized_health_check_on_the_credential_free_grpc_port_is_refused_unread()
    {
        var (allocated, status) = await ProbeAsync(_settings.GrpcPort, "/grpc.health.v1.Health/Check", authorization: null);
        Assert.True(allocated < OversizedBytes / 4, $"the rank allocated {allocated:N0} bytes for a refused {OversizedBytes:N0}-byte health check");
        Assert.True(status is null || status.StartsWith("8|", StringComparison.Ordinal), $"grpc-status {status}, expected RESOURCE_EXHAUSTED (8)");
    }

    [Theory]
    [InlineData(new byte[] { 0x0f, 0xff, 0xff })] // a wire type protobuf rejects
    [InlineData(new byte[] { 0x0a, 0x40, 0x61 })] // a field declared 64 bytes long, 1 sent
    public async Task A_malformed_compute_without_the_token_is_unauthenticated_and_logs_nothing(byte[] payload)
    {
        var logged = new LogCapture();
        _rank.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().AddProvider(logged);
        var status = await SendSmallAsync(payload, authorization: null);
        Assert.True(status.StartsWith("16|", StringComparison.Ordinal), $"grpc-status {status}, expected UNAUTHENTICATED (16)");
        Assert.DoesNotContain(logged.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning || e.Exception is not null);
    }

    private async Task<string> SendSmallAsync(byte[] payload, string? authorization)
    {
        using var http = new HttpClient();
        var frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{_settings.Parallel.ExpertPort}/deepseek.runtime.v1.Experts/Compute"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (authorization is not null) request.Headers.TryAddWithoutValidation("authorization", authorization);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead);
        string? Get(string name) => response.Headers.TryGetValues(name, out var h) ? h.First() : response.TrailingHeaders.TryGetValues(name, out var t) ? t.First() : null;
        return $"{Get("grpc-status")}|{Uri.UnescapeDataString(Get("grpc-message") ?? "")}";
    }

    [Fact]
    public void The_limit_is_one_layers_exchange_with_headroom()
    {
        var config = DeepSeek.Model.Configuration.DeepSeekConfig.Load(FixtureDir);
        var limit = ExpertMessageLimit.For(config, 2048);
        var oneStep = 2048L * (config.HiddenSize * 4 + config.NumExpertsPerTok * 12);
        Assert.InRange(limit, oneStep, 2 * oneStep + 1024 * 1024);
    }

    /// <summary>
    /// Streams one gRPC frame announcing <see cref="OversizedBytes"/> and sends them from a reused
    /// buffer; returns what the process allocated meanwhile and the grpc-status, if an answer came.
    /// </summary>
    private static async Task<(long Allocated, string? Status)> ProbeAsync(int port, string path, string? authorization)
    {
        using var http = new HttpClient(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(60) };
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{port}{path}"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new OversizedFrame(OversizedBytes),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (authorization is not null) request.Headers.TryAddWithoutValidation("authorization", authorization);
        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        string? status = null;
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead);
            status = response.Headers.TryGetValues("grpc-status", out var values) ? values.First()
                : response.TrailingHeaders.TryGetValues("grpc-status", out var trailing) ? trailing.First() : "none";
            var message = response.Headers.TryGetValues("grpc-message", out var m) ? m.First() : response.TrailingHeaders.TryGetValues("grpc-message", out var tm) ? tm.First() : "";
            status = $"{status}|{Uri.UnescapeDataString(message)}";
        }
        catch (HttpRequestException)
        {
            // The server ended the stream while the body was still going out: refused, with no answer to read.
        }
        return (GC.GetTotalAllocatedBytes(precise: true) - before, status);
    }

    /// <summary>A gRPC frame of <c>length</c> zero bytes (a valid protobuf-free payload is not needed: it must never be parsed).</summary>
    private sealed class OversizedFrame(int length) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var header = new byte[5];
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), (uint)length);
            await stream.WriteAsync(header);
            var chunk = new byte[64 * 1024];
            for (var sent = 0; sent < length; sent += chunk.Length) await stream.WriteAsync(chunk.AsMemory(0, Math.Min(chunk.Length, length - sent)));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
