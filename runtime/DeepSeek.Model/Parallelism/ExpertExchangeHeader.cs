namespace DeepSeek.Model.Parallelism;

/// <summary>What the leader's next collectives are, as <see cref="ExpertExchangeHeader"/> says.</summary>
public enum ExchangeCommand : long
{
    /// <summary>Nothing follows: the leader is alive and idle (ranks count a silent leader as lost).</summary>
    Heartbeat = 1,
    /// <summary>One MoE layer's exchange follows: routed rows out, expert outputs back.</summary>
    Layer = 2,
    /// <summary>The leader leaves the group; the ranks leave it too and wait for the next one.</summary>
    Stop = 3,
}

/// <summary>
/// The small int64 tensor the leader broadcasts before every exchange of an NCCL group, so every rank
/// issues the same collectives with the same sizes: <c>[command, layer, placement version, k,
/// rows for rank 0, …, rows for rank N−1]</c>. Rows for rank 0 are always 0 (the leader computes its
/// own share in place).
/// </summary>
public sealed record ExpertExchangeHeader(ExchangeCommand Command, int Layer, long PlacementVersion, int ExpertsPerToken, IReadOnlyList<long> RowsPerRank)
{
    /// <summary>Fixed fields before the per-rank row counts.</summary>
    private const int Fixed = 4;

    /// <summary>Values in a header of a group of <paramref name="worldSize"/> ranks.</summary>
    public static int Length(int worldSize) => Fixed + worldSize;

    public static ExpertExchangeHeader Heartbeat(int worldSize) => new(ExchangeCommand.Heartbeat, -1, 0, 0, new long[worldSize]);

    public static ExpertExchangeHeader Stop(int worldSize) => new(ExchangeCommand.Stop, -1, 0, 0, new long[worldSize]);

    public long[] ToValues() => [(long)Command, Layer, PlacementVersion, ExpertsPerToken, .. RowsPerRank];

    /// <exception cref="FormatException">Not a header of a group of <paramref name="worldSize"/>: the ranks disagree on the protocol.</exception>
    public static ExpertExchangeHeader Parse(IReadOnlyList<long> values, int worldSize)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count != Length(worldSize))
            throw new FormatException($"An exchange header of a group of {worldSize} has {Length(worldSize)} values, got {values.Count}.");
        var command = (ExchangeCommand)values[0];
        if (!Enum.IsDefined(command)) throw new FormatException($"Unknown exchange command {values[0]}.");
        var rows = values.Skip(Fixed).ToArray();
        if (rows.Any(r => r < 0) || rows[0] != 0) throw new FormatException($"Row counts [{string.Join(", ", rows)}] must be 0 or more, and 0 for the leader.");
        if (command == ExchangeCommand.Layer && (values[1] < 0 || values[1] > int.MaxValue || values[3] < 1 || values[3] > int.MaxValue))
            throw new FormatException($"A layer exchange needs a layer and k ≥ 1, got layer {values[1]} and k {values[3]}.");
        return new ExpertExchangeHeader(command, (int)values[1], values[2], (int)values[3], rows);
    }
}
