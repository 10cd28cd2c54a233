using Xunit;

namespace DeepSeek.Testing;

/// <summary>Bounded waiting: poll a condition until it holds or a deadline passes (never a sleep as an assertion).</summary>
public static class Eventually
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <remarks>HTTP errors (the Kubernetes client's and plain ones) count as "not yet"; the last one is reported on timeout.</remarks>
    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition().ConfigureAwait(false)) return;
            }
            catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
            {
                last = e;
            }
            await Task.Delay(Poll).ConfigureAwait(false);
        }
        Assert.Fail($"Timed out after {timeout} waiting for: {what}{(last is null ? "" : $" (last error: {last.Message})")}");
    }
}
