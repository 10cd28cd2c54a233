using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// Greedy agreement of a model with a reference run, step by step (<c>bench --teacher-tokens</c>): the
/// reference's prompts are prefilled together, then every step decodes the whole batch on the
/// reference's own previous tokens, and each step's greedy choice is compared with the reference's
/// token there. Comparing free-running generations instead counts every step after the first near-tie
/// as different, although the two models then simply continue different texts; forcing the reference's
/// tokens counts each near-tie once (vLLM's quantization tests stop comparing at the first parting for
/// the same reason). The batches have the shapes of the engine's own steps (one prefill of all prompts,
/// then decode steps of the whole batch), so the same kernels run as in the timed run.
/// </summary>
public static class TeacherForcedAgreement
{
    public static TeacherForcedRow Run(DeepSeekForCausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<IReadOnlyList<int>> reference)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(reference);
        if (prompts.Count == 0 || prompts.Count != reference.Count)
            throw new ArgumentException($"The reference has {prompts.Count} prompts and {reference.Count} token lists; it needs one of each per request.");
        var steps = reference[0].Count;
        if (steps == 0 || reference.Any(r => r.Count != steps) || prompts.Any(p => p.Count == 0))
            throw new ArgumentException("Every reference request needs a prompt and the same number of generated tokens.");

        // One block per sequence, as long as its whole context: sequence i lives in block i.
        var blockSize = prompts.Max(p => p.Count) + steps;
        using var cache = model.CreateCache((long)blockSize * prompts.Count);
        var disagreements = new List<TeacherForcedDisagreement>();
        var margins = new List<float>(prompts.Count * steps);
        for (var step = 0; step < steps; step++)
        {
            var batch = step == 0 ? Prefill(prompts, blockSize) : Decode(prompts, reference, step, blockSize);
            var (chosen, chosenLogits, referenceLogits, runnerUp) = Choose(model, batch, cache, reference, step);
            for (var i = 0; i < prompts.Count; i++)
            {
                if (chosen[i] == reference[i][step]) margins.Add(chosenLogits[i] - runnerUp[i]);
                else disagreements.Add(new TeacherForcedDisagreement(i, step, reference[i][step], chosen[i], chosenLogits[i] - referenceLogits[i]));
            }
        }
        margins.Sort();
        return new TeacherForcedRow(prompts.Count, prompts.Count * steps, prompts.Count * steps - disagreements.Count,
            margins.Count > 0 ? margins[margins.Count / 2] : 0, disagreements);
    }

    private static ForwardBatch Prefill(IReadOnlyList<IReadOnlyList<int>> prompts, int blockSize)
    {
        var tokens = new List<long>();
        var positions = new List<long>();
        var spans = new List<SequenceSpan>(prompts.Count);
        for (var i = 0; i < prompts.Count; i++)
        {
            spans.Add(new SequenceSpan(tokens.Count, prompts[i].Count, [i]));
            tokens.AddRange(prompts[i].Select(id => (long)id));
            positions.AddRange(Enumerable.Range(0, prompts[i].Count).Select(p => (long)p));
        }
        return new ForwardBatch([.. tokens], [.. positions], spans, blockSize);
    }

    /// <summary>Step <paramref name="step"/> ≥ 1: each sequence's reference token of the step before, at the position after its context.</summary>
    private static ForwardBatch Decode(IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<IReadOnlyList<int>> reference, int step, int blockSize) =>
        new([.. reference.Select(r => (long)r[step - 1])],
            [.. prompts.Select(p => (long)(p.Count + step - 1))],
            [.. prompts.Select((_, i) => new SequenceSpan(i, 1, [i]))],
            blockSize);

    /// <summary>Per sequence: the greedy token, its logit, the reference token's logit and the runner-up's logit.</summary>
    private static (int[] Chosen, float[] ChosenLogits, float[] ReferenceLogits, float[] RunnerUp) Choose(
        DeepSeekForCausalLM model, ForwardBatch batch, MlaKvCache cache, IReadOnlyList<IReadOnlyList<int>> reference, int step)
    {
        using var scope = NewDisposeScope();
        using var output = model.Forward(batch, cache);
        var logits = output.Logits.to(ScalarType.Float32);
        var (top, indices) = logits.topk(2, dim: 1);
        var wanted = tensor(reference.Select(r => (long)r[step]).ToArray(), ScalarType.Int64, logits.device).unsqueeze(1);
        var referenceLogits = logits.gather(1, wanted).squeeze(1).cpu().data<float>().ToArray();
        // Row-major [rows, 2]: the greedy token and the runner-up.
        var topValues = top.cpu().data<float>().ToArray();
        var topIds = indices.cpu().data<long>().ToArray();
        var rows = reference.Count;
        var chosen = new int[rows];
        var chosenLogits = new float[rows];
        var runnerUp = new float[rows];
        for (var i = 0; i < rows; i++)
        {
            chosen[i] = (int)topIds[2 * i];
            chosenLogits[i] = topValues[2 * i];
            runnerUp[i] = topValues[(2 * i) + 1];
        }
        return (chosen, chosenLogits, referenceLogits, runnerUp);
    }
}

/// <summary>
/// One batch's teacher-forced agreement: of <c>Steps</c> (requests × generated tokens), how many chose
/// the reference's token; the median logit margin of the agreeing steps over their runner-up; and each
/// disagreement with the logit the model's own choice had over the reference's token (how near a tie).
/// </summary>
public sealed record TeacherForcedRow(int Requests, int Steps, int EqualSteps, float MedianMargin, IReadOnlyList<TeacherForcedDisagreement> Disagreements);

/// <summary>A step whose greedy token was not the reference's: <c>Margin</c> is the chosen token's logit minus the reference token's.</summary>
public sealed record TeacherForcedDisagreement(int Request, int Step, int ReferenceToken, int ChosenToken, float Margin);
