namespace DeepSeek.Runtime.Cli;

/// <summary>
/// A table as Markdown with padded columns: readable as plain text in a terminal of any width (no
/// wrapping, unlike a drawn table in an 80-column pipe) and renderable where it is pasted.
/// </summary>
public static class MarkdownTable
{
    /// <param name="header">Column names.</param>
    /// <param name="rows">Cells, as many per row as <paramref name="header"/> has.</param>
    /// <param name="leftAligned">The first this many columns are text, padded on the right; the rest numbers, padded on the left.</param>
    public static IReadOnlyList<string> Lines(IReadOnlyList<string> header, IReadOnlyList<IReadOnlyList<string>> rows, int leftAligned)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Any(row => row.Count != header.Count)) throw new ArgumentException("Every row needs one cell per column.", nameof(rows));
        var widths = header.Select((name, column) => Math.Max(name.Length, rows.Select(row => row[column].Length).DefaultIfEmpty(0).Max())).ToArray();
        string Line(IReadOnlyList<string> cells) =>
            "| " + string.Join(" | ", cells.Select((cell, column) => column < leftAligned ? cell.PadRight(widths[column]) : cell.PadLeft(widths[column]))) + " |";
        var rule = "|" + string.Join("|", widths.Select((width, column) => column < leftAligned ? $" {new string('-', width)} " : $" {new string('-', width - 1)}: ")) + "|";
        return [Line(header), rule, .. rows.Select(Line)];
    }
}
