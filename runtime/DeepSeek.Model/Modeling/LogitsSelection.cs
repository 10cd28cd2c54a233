namespace DeepSeek.Model.Modeling;

/// <summary>Which positions of a batch get logits.</summary>
public enum LogitsSelection
{
    /// <summary>The last token of each sequence, in sequence order: what sampling needs.</summary>
    LastTokenOfEachSequence,

    /// <summary>Every token of the batch, in batch order: for scoring and tests.</summary>
    AllTokens,
}
