using Xunit;

namespace DeepSeek.Testing;

/// <summary>Bounded waiting: poll a condition until it holds or a deadline passes (never a sleep as an assertion).</summary>
public static class Eventually
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <remarks>
    /// HTTP errors (the Kubernetes client's and plain ones) count as "not yet"; the last one is reported on timeout.
    /// <paramref name="timeout"/> is scaled by <see cref="TestTime"/>.
    /// </remarks>
    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(condition);
        timeout = TestTime.Budget(timeout);
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

    /// <summary>Polls a synchronous condition until it holds or the scaled <paramref name="timeout"/> passes; fails naming <paramref name="what"/>.</summary>
    public static void Holds(Func<bool> condition, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(condition);
        timeout = TestTime.Budget(timeout);
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline) Assert.Fail($"Timed out after {timeout} waiting for: {what}");
            Thread.Sleep(Poll);
        }
    }
}
