using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using DeepSeek.Autoscaling.EndToEndTests.Infrastructure;
using DeepSeek.Operator.Status;
using Xunit.Abstractions;

namespace DeepSeek.Autoscaling.EndToEndTests;

/// <summary>
/// The issue's end-to-end check: the operator, the test API server, and real runtime server
/// processes (embedded tiny model, CPU, one running request each) on 127.0.0.32 and .33 standing in
/// for pods. The test plays the kubelet: a replica the operator adds is a process started and, once
/// its <c>/ready</c> answers 200, a Ready Pod; a replica it removes is a Pod marked not Ready, its
/// process sent SIGTERM and drained, then the Pod deleted. Closed-loop HTTP clients send
/// <c>/v1/completions</c> to the Ready pods as a Service would; every request must succeed.
/// </summary>
public sealed class RealRuntimeScalingTests(ITestOutputHelper output)
{
    private const string ModelName = "deepseek-v3-tiny";

    // Generous: the machine is shared and slow; a runtime start alone (TorchSharp load) can take a minute.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    // Kubernetes removes a terminating pod from the endpoints while the kubelet sends SIGTERM; a pod
    // usually covers that race with a preStop sleep. This is that pause: a request a client picked this
    // pod for just before the removal still reaches it before the drain starts.
    private static readonly TimeSpan EndpointPropagation = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task The_queue_of_real_runtimes_scales_the_model_up_and_back_down_and_no_request_fails()
    {
        var clock = Stopwatch.StartNew();
        var grpcPort = FreePort.Next();
        var httpPort = FreePort.Next();
        var processes = new ConcurrentDictionary<int, RuntimeProcess>();
        var endpoints = new ServiceEndpoints();
        var results = new ConcurrentQueue<(string Replica, string Outcome)>();
        var drained = new ConcurrentBag<int>();
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(3) };
        using var heavy = new CancellationTokenSource();
        using var trickle = new CancellationTokenSource();
        var clients = new List<Task>();
        var passed = false;
        try
        {
            await using var harness = await AutoscalingHarness.StartAsync();
            await using (var kubelet = new PlayedKubelet(harness.Admin, "tiny", i => (Address(i).ToString(), grpcPort))
            {
                BeforeCreate = async i =>
                {
                    if (!processes.ContainsKey(i))
                        processes[i] = await RuntimeProcess.StartAsync(Address(i), httpPort, grpcPort, Deadline);
                    output.WriteLine($"{clock.Elapsed:mm\\:ss} replica {i} ready on {Address(i)}");
                },
                AfterReady = i =>
                {
                    endpoints.Add(processes[i]);
                    return Task.CompletedTask;
                },
                BeforeDelete = async i =>
                {
                    if (!processes.TryGetValue(i, out var stopping)) return;
                    endpoints.Remove(stopping);
                    await Task.Delay(EndpointPropagation);
                    // One request admitted just before SIGTERM (as one sent before the endpoints update
                    // would be): the drain always has work in flight to finish, not only by chance.
                    var late = Task.Run(async () => results.Enqueue((stopping.Address.ToString(), await CompleteAsync(http, stopping, maxTokens: 32))));
                    await Eventually.HoldsAsync(async () => late.IsCompleted || await stopping.InFlightAsync(http) > 0, Deadline, $"the late request reaches replica {i}");
                    drained.Add(i);
                    output.WriteLine($"{clock.Elapsed:mm\\:ss} SIGTERM replica {i}");
                    await stopping.StopAsync(Deadline);
                    await late.WaitAsync(Deadline);
                    processes.TryRemove(i, out _);
                    output.WriteLine($"{clock.Elapsed:mm\\:ss} replica {i} drained and exited");
                    await stopping.DisposeAsync();
                },
            })
            {
                harness.StartOperator();
                await harness.CreateModelAsync(AutoscalingHarness.Model("tiny", max: 2, target: 1, downWindowSeconds: 5));
                await Eventually.HoldsAsync(async () => processes.ContainsKey(0) && (await harness.GetModelAsync("tiny")).Status?.QueueDepth is not null, Deadline, "replica 0 runs and is polled");
                output.WriteLine($"{clock.Elapsed:mm\\:ss} replica 0 polled");

                // Four closed-loop clients on one running slot: three wait, above the target of 1 per replica.
                clients.AddRange(Enumerable.Range(0, 4).Select(c => Task.Run(() => ClientLoopAsync(http, endpoints, results, c == 0 ? trickle.Token : heavy.Token))));

                await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("tiny") == 2, Deadline, $"scale up to 2 under load (kubelet: {kubelet.LastError})");
                output.WriteLine($"{clock.Elapsed:mm\\:ss} Deployment scaled to 2");
                // The event of a decision is written after the workload and status, so it may trail them.
                await Eventually.HoldsAsync(async () => (await harness.EventsAsync(ModelConditions.ReasonScaledUp)).Count > 0, Deadline, "a ScaledUp event");
                await Eventually.HoldsAsync(() => Task.FromResult(results.Any(r => r.Replica == Address(1).ToString())), Deadline, $"the second replica serves requests (kubelet: {kubelet.LastError})");
                output.WriteLine($"{clock.Elapsed:mm\\:ss} replica 1 served a request");

                // The load stops but for one client: its requests are in flight during the scale-down.
                await heavy.CancelAsync();
                await Eventually.HoldsAsync(async () => await harness.DeploymentReplicasAsync("tiny") == 1, Deadline, "scale back down to 1 after the window");
                output.WriteLine($"{clock.Elapsed:mm\\:ss} Deployment scaled to 1");
                await Eventually.HoldsAsync(() => Task.FromResult(processes.Count == 1 && processes.ContainsKey(0)), Deadline, $"the removed replica drained and stopped (kubelet: {kubelet.LastError})");
                await Eventually.HoldsAsync(async () => (await harness.EventsAsync(ModelConditions.ReasonScaledDown)).Count > 0, Deadline, "a ScaledDown event");
                Assert.Equal([1], drained);

                await trickle.CancelAsync();
                await Task.WhenAll(clients).WaitAsync(Deadline);
            }

            var byReplica = results.GroupBy(r => r.Replica).Select(g => $"{g.Key}: {g.Count()}");
            output.WriteLine($"{clock.Elapsed:mm\\:ss} done; requests per replica: {string.Join(", ", byReplica)}");
            Assert.All(results, r => Assert.Equal("ok", r.Outcome));
            passed = true;
        }
        finally
        {
            await heavy.CancelAsync();
            await trickle.CancelAsync();
            foreach (var p in processes.Values)
            {
                if (!passed) output.WriteLine($"replica {p.Address} log tail:\n{p.LogTail}");
                await p.DisposeAsync();
            }
            await Task.WhenAny(Task.WhenAll(clients), Task.Delay(TimeSpan.FromSeconds(30)));
        }
    }

    private static IPAddress Address(int ordinal) => IPAddress.Parse($"127.0.0.{32 + ordinal}");

    /// <summary>One client: a request to a Ready replica, its answer, the next request.</summary>
    private static async Task ClientLoopAsync(HttpClient http, ServiceEndpoints endpoints, ConcurrentQueue<(string, string)> results, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (endpoints.Pick() is not { } target)
            {
                await Task.Delay(50, CancellationToken.None);
                continue;
            }
            results.Enqueue((target.Address.ToString(), await CompleteAsync(http, target)));
        }
    }

    /// <summary>"ok", or what was wrong: a failure to connect, a status other than 200, or no finish_reason.</summary>
    private static async Task<string> CompleteAsync(HttpClient http, RuntimeProcess runtime, int maxTokens = 16)
    {
        try
        {
            // 16 tokens: a few seconds per request here, long enough that the closed loops keep a queue.
            using var response = await http.PostAsJsonAsync(new Uri(runtime.BaseUri, "v1/completions"),
                new { model = ModelName, prompt = "The quick brown fox", max_tokens = maxTokens, temperature = 0 });
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode != HttpStatusCode.OK) return $"{(int)response.StatusCode} from {runtime.Address}: {body}";
            using var json = JsonDocument.Parse(body);
            var finish = json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason");
            return finish.ValueKind == JsonValueKind.String ? "ok" : $"no finish_reason from {runtime.Address}: {body}";
        }
        catch (HttpRequestException e)
        {
            return $"{runtime.Address}: {e.Message}";
        }
    }
}
