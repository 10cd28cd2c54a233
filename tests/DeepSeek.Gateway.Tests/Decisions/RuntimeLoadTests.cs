using DeepSeek.Gateway.Upstream;

namespace DeepSeek.Gateway.Tests.Decisions;

public sealed class RuntimeLoadTests
{
    [Fact]
    public void Waiting_and_running_are_summed_over_every_series_of_an_exposition()
    {
        const string exposition = """
            # HELP deepseek_requests_waiting Requests admitted and waiting for a step (queue depth).
            # TYPE deepseek_requests_waiting gauge
            deepseek_requests_waiting{otel_scope_name="DeepSeek.Engine",model="a"} 3
            deepseek_requests_waiting{otel_scope_name="DeepSeek.Engine",model="b"} 2 1733580000000
            deepseek_requests_waiting_total_not_this{model="a"} 100
            # TYPE deepseek_requests_running gauge
            deepseek_requests_running{otel_scope_name="DeepSeek.Engine",model="a"} 4
            deepseek_requests_running 1
            deepseek_gateway_requests_total{model="a"} 999
            """;
        Assert.Equal(10, RuntimeLoadMonitor.Parse(exposition));
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only comments\n")]
    [InlineData("other_metric 5\n")]
    [InlineData("deepseek_requests_waiting{model=\"a\"} NaN\n")]
    [InlineData("deepseek_requests_waiting{model=\"a\"} -1\n")]
    public void An_exposition_without_a_usable_gauge_reports_nothing(string exposition) =>
        Assert.Null(RuntimeLoadMonitor.Parse(exposition));

    [Fact]
    public void Routing_weighs_the_higher_of_the_gateways_count_and_the_runtimes_report()
    {
        var endpoint = new EndpointState("http://127.0.0.1:1");
        Assert.Null(endpoint.RuntimeLoad);
        using (endpoint.Enter())
        using (endpoint.Enter())
        {
            Assert.Equal(2, endpoint.Load);
            endpoint.ReportRuntimeLoad(7);
            Assert.Equal(7, endpoint.Load);
            endpoint.ReportRuntimeLoad(1);
            Assert.Equal(2, endpoint.Load);
        }
        endpoint.ReportRuntimeLoad(null);
        Assert.Equal(0, endpoint.Load);
    }
}
