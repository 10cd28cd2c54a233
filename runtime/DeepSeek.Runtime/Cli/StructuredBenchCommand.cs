using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using DeepSeek.Engine.Structured;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Bench;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// <c>bench structured</c>: what the token mask of structured outputs costs per step on the CPU, for a
/// tokenizer's vocabulary (or a synthetic one of DeepSeek-V3's size), over schemas of the kinds
/// clients send: a random walk under the mask, timing each step's mask, split into steps that computed
/// a state's mask (a cache miss) and steps served from the per-state cache.
/// </summary>
public static class StructuredBenchCommand
{
    internal static readonly (string Name, string Schema)[] Schemas =
    [
        ("json_object", ""),
        ("person", """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"email":{"type":"string"}},"required":["name","age","email"],"additionalProperties":false}"""),
        ("order", """{"type":"object","properties":{"id":{"type":"integer"},"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer"},"price":{"type":"number"}},"required":["sku","qty","price"],"additionalProperties":false},"minItems":1,"maxItems":4},"status":{"enum":["open","paid","shipped"]}},"required":["id","items","status"],"additionalProperties":false}"""),
    ];

    public static Command Build()
    {
        var tokenizerPath = new Option<string?>("--tokenizer") { Description = "tokenizer.json to take the vocabulary from (default: a synthetic byte-level vocabulary of --vocab tokens)." };
        var vocab = new Option<int>("--vocab") { Description = "Size of the synthetic vocabulary.", DefaultValueFactory = _ => 129_280 };
        var steps = new Option<int>("--steps") { Description = "Tokens generated per run.", DefaultValueFactory = _ => 200 };
        var runs = new Option<int>("--runs") { Description = "Runs per schema (random walks under the mask; later runs meet cached states).", DefaultValueFactory = _ => 5 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var command = new Command("structured", "Structured outputs: the per-step cost of the JSON-schema token mask on the CPU, computed and cached.")
        {
            tokenizerPath, vocab, steps, runs, seed,
        };
        command.SetAction(parse =>
        {
            var random = new Random(parse.GetValue(seed));
            var (bytes, source) = parse.GetValue(tokenizerPath) is { } path
                ? (FromTokenizer(BpeTokenizer.Load(path)), path)
                : (Synthetic(parse.GetValue(vocab), random), $"synthetic byte-level vocabulary of {parse.GetValue(vocab)} tokens");
            var clock = Stopwatch.StartNew();
            var vocabulary = new TokenVocabulary(bytes, [1]);
            Console.WriteLine($"{source}: {bytes.Length} ids, trie of {vocabulary.NodeCount} nodes built in {clock.Elapsed.TotalMilliseconds:F0} ms; {Environment.ProcessorCount} CPUs, one thread");
            Console.WriteLine("| schema | steps | computed masks | ms per computed mask (mean / max) | ms per cached step (mean) | allowed tokens (mean) |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
            foreach (var (name, schema) in Schemas)
            {
                var outputs = new StructuredOutputs(vocabulary);
                var constraint = outputs.Compile(schema.Length == 0 ? new ResponseFormat("json_object") : new ResponseFormat("json_schema", name, schema))!;
                var computed = new List<double>();
                var cached = new List<double>();
                long allowedSum = 0;
                var allowed = new bool[bytes.Length];
                for (var run = 0; run < parse.GetValue(runs); run++)
                {
                    var cursor = constraint.Start();
                    var output = new List<int>();
                    var maxTokens = parse.GetValue(steps);
                    for (var step = 0; step < maxTokens; step++)
                    {
                        cursor.Advance(output);
                        var before = constraint.MasksComputed;
                        var start = Stopwatch.GetTimestamp();
                        cursor.Allowed(maxTokens - step, bytes.Length, allowed);
                        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                        (constraint.MasksComputed > before ? computed : cached).Add(ms);
                        var choices = new List<int>();
                        for (var i = 0; i < allowed.Length; i++) if (allowed[i]) choices.Add(i);
                        allowedSum += choices.Count;
                        var token = choices[random.Next(choices.Count)];
                        if (token == 1) break;
                        output.Add(token);
                    }
                }
                var total = computed.Count + cached.Count;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {total} | {computed.Count} | {Mean(computed):F2} / {(computed.Count == 0 ? 0 : computed.Max()):F2} | {Mean(cached):F3} | {(double)allowedSum / Math.Max(1, total):F0} |"));
            }
        });
        return command;
    }

    /// <summary>
    /// What <c>bench --structured-share</c> constrains with: the "order" schema (nested objects, an array
    /// with bounds, an enum) over the vocabulary of <paramref name="modelFolder"/>'s tokenizer as
    /// <c>serve</c> builds it, or, for a random-weight shape (null), a synthetic byte-level vocabulary
    /// of the model's size whose end-of-sequence id is the model's.
    /// </summary>
    internal static StructuredLoad Load(DeepSeekConfig config, string? modelFolder, double share, int seed)
    {
        var tokenizerFile = modelFolder is null ? null : Path.Combine(modelFolder, "tokenizer.json");
        TokenVocabulary vocabulary;
        if (tokenizerFile is not null && File.Exists(tokenizerFile))
        {
            vocabulary = EngineService.Vocabulary(BpeTokenizer.Load(tokenizerFile), config);
        }
        else
        {
            var bytes = Synthetic(config.VocabSize, new Random(seed));
            var eos = config.EosTokenId ?? 1;
            if (eos < bytes.Length) bytes[eos] = null;  // an end-of-sequence id is no text
            vocabulary = new TokenVocabulary(bytes, [eos]);
        }
        var (name, schema) = Schemas.Single(s => s.Name == "order");
        return new StructuredLoad(new StructuredOutputs(vocabulary).Compile(new ResponseFormat("json_schema", name, schema))!, share, name);
    }

    private static double Mean(List<double> values) => values.Count == 0 ? 0 : values.Average();

    private static byte[]?[] FromTokenizer(BpeTokenizer tokenizer)
    {
        var bytes = new byte[]?[tokenizer.Size];
        for (var id = 0; id < bytes.Length; id++) bytes[id] = tokenizer.BytesOf(id);
        return bytes;
    }

    /// <summary>Ids 0-1 special, then every byte, then words, numbers and JSON punctuation runs of 2-12 bytes, as BPE vocabularies hold.</summary>
    private static byte[]?[] Synthetic(int size, Random random)
    {
        var bytes = new byte[]?[Math.Max(size, 258)];
        for (var b = 0; b < 256; b++) bytes[2 + b] = [(byte)b];
        const string letters = "etaoinshrdlucmfwypvbgkjqxz";
        const string punctuation = "{}[]\":,._-/()'!?";
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var id = 258; id < bytes.Length;)
        {
            var length = 2 + random.Next(11);
            var text = new StringBuilder();
            var kind = random.Next(10);
            if (kind < 6 && random.Next(2) == 0) text.Append(' ');
            while (text.Length < length)
                text.Append(kind switch
                {
                    < 6 => letters[Math.Min(letters.Length - 1, (int)(random.NextDouble() * random.NextDouble() * letters.Length))],
                    < 8 => (char)('0' + random.Next(10)),
                    _ => punctuation[random.Next(punctuation.Length)],
                });
            if (seen.Add(text.ToString())) bytes[id++] = Encoding.UTF8.GetBytes(text.ToString());
        }
        return bytes;
    }
}
