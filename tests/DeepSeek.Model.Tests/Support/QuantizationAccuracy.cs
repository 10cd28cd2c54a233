using DeepSeek.Model.Modeling;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Support;

/// <summary>
/// How far a quantised model is from the unquantised one on a fixture's prompts. Teacher-forced: both
/// models read the same tokens (prompt + the unquantised model's greedy continuation) and at every
/// position the log-probability each gives the unquantised model's next token is compared, and whether
/// their top-1 agree. Free-running: how many greedy steps the quantised model takes before it first
/// leaves the unquantised model's continuation.
/// </summary>
public sealed record QuantizationAccuracy(
    int Positions,
    double MeanAbsLogprobDiff,
    double MaxAbsLogprobDiff,
    double TopOneAgreement,
    int GreedyStepsMatched,
    int GreedySteps,
    double RmsLogitDiff,
    double RmsLogit)
{
    public static QuantizationAccuracy Measure(DeepSeekForCausalLM reference, DeepSeekForCausalLM candidate, IEnumerable<long[]> prompts, int steps)
    {
        var diffs = new List<double>();
        int agree = 0, matched = 0, total = 0;
        double squaredDiff = 0, squared = 0;
        long logits = 0;
        foreach (var prompt in prompts)
        {
            var expected = GreedyDecoding.Cached(reference, prompt, steps);
            var actual = GreedyDecoding.Cached(candidate, prompt, steps);
            matched += expected.Zip(actual).TakeWhile(p => p.First == p.Second).Count();
            total += steps;

            long[] tokens = [.. prompt, .. expected];
            using var scope = NewDisposeScope();
            var a = AllLogits(reference, tokens);
            var b = AllLogits(candidate, tokens);
            var next = tensor(tokens[1..]).unsqueeze(1);
            var rows = tokens.Length - 1;
            var lpA = a.narrow(0, 0, rows).log_softmax(-1).gather(1, next).squeeze(1);
            var lpB = b.narrow(0, 0, rows).log_softmax(-1).gather(1, next).squeeze(1);
            diffs.AddRange((lpA - lpB).abs().data<double>().ToArray());
            agree += (int)a.narrow(0, 0, rows).argmax(-1).eq(b.narrow(0, 0, rows).argmax(-1)).sum().item<long>();
            squaredDiff += (a - b).pow(HeldScalars.Two).sum().item<double>();
            squared += (a - a.mean([-1], keepdim: true)).pow(HeldScalars.Two).sum().item<double>();
            logits += a.numel();
        }
        return new QuantizationAccuracy(diffs.Count, diffs.Average(), diffs.Max(), (double)agree / diffs.Count, matched, total,
            Math.Sqrt(squaredDiff / logits), Math.Sqrt(squared / logits));
    }

    private static Tensor AllLogits(DeepSeekForCausalLM model, long[] tokens)
    {
        using var cache = model.CreateCache(tokens.Length);
        using var output = model.Forward(ForwardBatch.Contiguous(tokens, 0, LogitsSelection.AllTokens), cache);
        return output.Logits.to(ScalarType.Float64);
    }

    public override string ToString() =>
        $"{Positions} positions: |Δ logprob| mean {MeanAbsLogprobDiff:G3} max {MaxAbsLogprobDiff:G3}; top-1 agreement {TopOneAgreement:P1}; "
        + $"greedy {GreedyStepsMatched}/{GreedySteps} steps before the first divergence; RMS Δ logit {RmsLogitDiff:G3} (logit RMS spread {RmsLogit:G3})";
}
