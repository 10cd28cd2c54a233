namespace DeepSeek.Testing;

/// <summary>
/// Deadlines of tests are budgets, not guesses: every wait a test makes is a generous deadline for the
/// condition it needs, multiplied by <c>TEST_TIME_SCALE</c> (default 1) on a machine known to be slow
/// or shared. A test that runs out of its budget says what it waited for; it never sleeps to pass.
/// </summary>
public static class TestTime
{
    /// <summary>The factor from <c>TEST_TIME_SCALE</c>: a number of at least 1; anything else is a set-up mistake and fails loudly.</summary>
    public static double Scale { get; } = ParseScale(Environment.GetEnvironmentVariable("TEST_TIME_SCALE"));

    /// <summary><paramref name="deadline"/> scaled for this machine.</summary>
    public static TimeSpan Budget(TimeSpan deadline) => deadline * Scale;

    internal static double ParseScale(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return 1;
        if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var scale)
            && scale >= 1 && double.IsFinite(scale))
            return scale;
        throw new InvalidOperationException($"TEST_TIME_SCALE is '{value}'; give a number of at least 1 (e.g. 3 on a loaded machine), or leave it unset.");
    }
}
