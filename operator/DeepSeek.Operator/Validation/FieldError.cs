namespace DeepSeek.Operator.Validation;

/// <summary>One thing wrong with a DeepSeekModel: the JSON path of the field and what to change.</summary>
public sealed record FieldError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}
