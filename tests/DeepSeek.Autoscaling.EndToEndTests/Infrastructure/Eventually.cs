namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>Bounded waiting: poll a condition until it holds or a generous deadline passes.</summary>
public static class Eventually
{
    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
            {
                last = e;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"Timed out after {timeout} waiting for: {what}{(last is null ? "" : $" (last error: {last.Message})")}");
    }
}
