using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using DeepSeek.Autoscaling.EndToEndTests.Infrastructure;
using DeepSeek.Operator.Status;

namespace DeepSeek.Autoscaling.EndToEndTests;

/// <summary>
/// The end-to-end check: the operator, the test API server, and real runtime server
/// processes (embedded tiny model, CPU) on 127.0.0.32, .33, .34 standing in for pods. The test
/// plays the kubelet: a replica the operator adds is a process started (and its Pod created); a
/// replica it removes is a process sent SIGTERM, drained, and its Pod deleted.
/// </summary>
public sealed class RealRuntimeScalingTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    // Not yet runnable: `serve` builds the engine but maps neither /v1/* nor the gRPC Inference
    // service (GetLoad) for it (RuntimeHost maps them only for an IInferenceBackend, and no backend
    // over the engine exists yet). Remove the skip once serve answers /v1/completions and GetLoad.
    [Fact(Skip = "serve does not yet expose the engine through /v1/completions and gRPC GetLoad (RuntimeHost needs an IInferenceBackend over the engine)")]
    public async Task The_queue_of_real_runtimes_scales_the_model_up_and_back_down_and_no_request_fails()
    {
        await using var harness = await AutoscalingHarness.StartAsync();
        var grpcPort = FreePort();
        var httpPort = FreePort();
        var processes = new ConcurrentDictionary<int, RuntimeProcess>();
        try
        {
            await using (var kubelet = new PlayedKubelet(harness.Admin, "tiny", i => ($"127.0.0.{32 + i}", grpcPort))
            {
                BeforeCreate = async i =>
                {
                    if (!processes.ContainsKey(i))
                        processes[i] = await RuntimeProcess.StartAsync(IPAddress.Parse($"127.0.0.{32 + i}"), httpPort, grpcPort, TimeSpan.FromSeconds(120));
                },
                BeforeDelete = async i =>
                {
                    if (processes.TryRemove(i, out var stopping)) await stopping.DisposeAsync();
                },
            })
            {
                harness.StartOperator();
                await harness.CreateModelAsync(AutoscalingHarness.Model("tiny", max: 3, target: 2, downWindowSeconds: 5));
                await Eventually.HoldsAsync(async () => processes.ContainsKey(0) && (await harness.GetModelAsync("tiny")).Status?.QueueDepth is not null, Deadline, "replica 0 runs and is polled");

                // Load: 8 clients in closed loops; with one running request per replica the rest queue.
                using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
                var modelId = await ServedModelAsync(http, processes[0]);
                var results = new ConcurrentBag<string>();
                using var stopLoad = new CancellationTokenSource();
                var clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
                {
                    while (!stopLoad.IsCancellationRequested)
                    {
                        // Requests go to replicas that are up, as a Service would route them.
                        var up = processes.Values.Where(p => !p.Exited).ToList();
                        var target = up[Random.Shared.Next(up.Count)];
                        results.Add(await CompleteAsync(http, target, modelId));
                    }
                })).ToList();

                await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("tiny") > 1, Deadline, "scale up under load");
                await Eventually.HoldsAsync(async () => (await harness.EventsAsync(ModelConditions.ReasonScaledUp)).Count > 0, Deadline, "a ScaledUp event");
                await Eventually.HoldsAsync(() => Task.FromResult(processes.Count > 1), Deadline, "a second runtime process serves");

                await stopLoad.CancelAsync();
                await Task.WhenAll(clients).WaitAsync(Deadline);
                Assert.NotEmpty(results);
                Assert.All(results, r => Assert.Equal("ok", r));

                await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("tiny") == 1, Deadline, "scale back down to 1 after the window");
                await Eventually.HoldsAsync(() => Task.FromResult(processes.Count == 1), Deadline, "the removed replicas' processes drained and stopped");
                Assert.NotEmpty(await harness.EventsAsync(ModelConditions.ReasonScaledDown));
            }
        }
        finally
        {
            foreach (var p in processes.Values) await p.DisposeAsync();
        }
    }

    private static async Task<string> ServedModelAsync(HttpClient http, RuntimeProcess runtime)
    {
        using var models = JsonDocument.Parse(await http.GetStringAsync(new Uri(runtime.BaseUri, "v1/models")));
        return models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
    }

    /// <summary>"ok", or what was wrong: a status other than 200 or no finish_reason.</summary>
    private static async Task<string> CompleteAsync(HttpClient http, RuntimeProcess runtime, string model)
    {
        using var response = await http.PostAsJsonAsync(new Uri(runtime.BaseUri, "v1/completions"),
            new { model, prompt = "The quick brown fox", max_tokens = 48, temperature = 0 });
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK) return $"{(int)response.StatusCode}: {body}";
        using var json = JsonDocument.Parse(body);
        var finish = json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason");
        return finish.ValueKind == JsonValueKind.String ? "ok" : $"no finish_reason: {body}";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
