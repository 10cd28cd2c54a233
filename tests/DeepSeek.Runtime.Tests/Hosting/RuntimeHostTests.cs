using System.Net;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace DeepSeek.Runtime.Tests.Hosting;

/// <summary>The real Kestrel host on loopback ports, reached over real sockets.</summary>
public sealed class RuntimeHostTests : IAsyncLifetime
{
    private readonly ServeConfiguration _settings = new() { Host = "127.0.0.1", HttpPort = FreePort.Next(), GrpcPort = FreePort.Next() };
    private WebApplication? _app;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        _app = RuntimeHost.Build(_settings);
        await _app.StartAsync();
        _http.BaseAddress = new Uri($"http://127.0.0.1:{_settings.HttpPort}");
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    [Fact]
    public async Task Health_answers_ok()
    {
        using var response = await _http.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"up\"", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Ready_follows_readiness_and_turns_unavailable_when_draining()
    {
        using (var ready = await _http.GetAsync(new Uri("/ready", UriKind.Relative)))
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);

        _app!.Services.GetRequiredService<Readiness>().MarkDraining();

        using var draining = await _http.GetAsync(new Uri("/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, draining.StatusCode);
        Assert.Contains("draining", await draining.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_are_prometheus_text()
    {
        using var response = await _http.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("# TYPE", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Grpc_health_reports_serving_then_not_serving_when_draining()
    {
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{_settings.GrpcPort}");
        var health = new Health.HealthClient(channel);

        var serving = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, serving.Status);

        _app!.Services.GetRequiredService<Readiness>().MarkDraining();
        var draining = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, draining.Status);
    }

    [Fact]
    public async Task Probe_paths_are_not_served_on_the_grpc_port()
    {
        using var handler = new SocketsHttpHandler();
        using var client = new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{_settings.GrpcPort}/health"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData("localhost:9000")]
    [InlineData("example.com")]
    [InlineData("127.0.0.1:1")]
    public async Task Probes_answer_whatever_the_host_header_says(string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health");
        request.Headers.Host = host;
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("{\"status\":\"up\"}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Grpc_health_answers_for_the_inference_service_by_name()
    {
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{_settings.GrpcPort}");
        var health = new Health.HealthClient(channel);
        var status = await health.CheckAsync(new HealthCheckRequest { Service = "deepseek.runtime.v1.Inference" });
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, status.Status);
    }

    [Theory]
    [InlineData("localhost", "127.0.0.1")]
    [InlineData("0.0.0.0", "0.0.0.0")]
    [InlineData("127.0.0.3", "127.0.0.3")]
    public void Listen_address_accepts_ip_addresses_and_localhost(string host, string expected) =>
        Assert.Equal(IPAddress.Parse(expected), RuntimeHost.ResolveListenAddress(host));

    [Fact]
    public void Listen_address_rejects_host_names_with_a_hint()
    {
        var error = Assert.Throws<ArgumentException>(() => RuntimeHost.ResolveListenAddress("example.com"));
        Assert.Contains("0.0.0.0", error.Message);
    }
}
