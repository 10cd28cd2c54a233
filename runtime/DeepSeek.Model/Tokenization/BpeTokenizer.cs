using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepSeek.Model.Tokenization;

/// <summary>
/// Byte-level BPE read from a Hugging Face <c>tokenizer.json</c>: added tokens matched first, then
/// the pre-tokenizer, then BPE merges by rank on the byte-level alphabet; decoding maps tokens back
/// to bytes and UTF-8. Written here because Microsoft.ML.Tokenizers 2.0.1 does not load
/// tokenizer.json (its byte-level BPE takes vocab.json/merges.txt with GPT-2's fixed regex, which
/// is not DeepSeek-V3's Split sequence).
/// </summary>
public sealed class BpeTokenizer
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _tokenOfId;
    private readonly Dictionary<(string, string), int> _mergeRank;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly Regex? _addedPattern;
    private readonly PreTokenizer _preTokenizer;
    private readonly bool _ignoreMerges;
    // Request handlers encode concurrently: the word cache takes concurrent readers and writers, and
    // stops growing at WordCacheLimit entries so arbitrary client text cannot grow it without bound.
    private const int WordCacheLimit = 100_000;
    private readonly ConcurrentDictionary<string, int[]> _wordCache = new(StringComparer.Ordinal);
    private int _wordCacheSize;

    private BpeTokenizer(Dictionary<string, int> vocabulary, Dictionary<(string, string), int> mergeRank,
        IReadOnlyList<AddedToken> added, PreTokenizer preTokenizer, bool ignoreMerges)
    {
        _vocabulary = vocabulary;
        _mergeRank = mergeRank;
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        _addedById = added.ToDictionary(a => a.Id);
        _addedByContent = added.ToDictionary(a => a.Content, StringComparer.Ordinal);
        AddedTokens = added;
        var size = Math.Max(vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(a => a.Id) + 1);
        _tokenOfId = new string[size];
        foreach (var (token, id) in vocabulary) _tokenOfId[id] = token;
        foreach (var token in added) _tokenOfId[token.Id] = token.Content;
        // A byte-level token has one character per byte.
        MaxTokenBytes = Math.Max(1, vocabulary.Keys.Select(k => k.Length).DefaultIfEmpty(1).Max());
        if (added.Count > 0)
            _addedPattern = new Regex(string.Join("|", added.OrderByDescending(a => a.Content.Length).Select(a => Regex.Escape(a.Content))),
                RegexOptions.CultureInvariant);
    }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Highest id + 1 over the vocabulary and added tokens.</summary>
    public int Size => _tokenOfId.Length;

    /// <summary>
    /// The most bytes one ordinary token stands for: a text of <c>B</c> UTF-8 bytes encodes to at least
    /// <c>B / MaxTokenBytes</c> tokens (plus added tokens), a bound the API checks before tokenizing.
    /// </summary>
    public int MaxTokenBytes { get; }

    public static BpeTokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no tokenizer.json; the model folder needs one for text prompts.", path);
        return Parse(File.ReadAllText(path));
    }

    public static BpeTokenizer Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.TryGetProperty("normalizer", out var normalizer) && normalizer.ValueKind != JsonValueKind.Null)
            throw new NotSupportedException($"tokenizer.json: normalizer \"{normalizer.GetProperty("type").GetString()}\" is not supported; byte-level BPE tokenizers have none.");
        var model = root.GetProperty("model");
        var modelType = model.TryGetProperty("type", out var t) ? t.GetString() : "BPE";
        if (modelType != "BPE") throw new NotSupportedException($"tokenizer.json: model type \"{modelType}\" is not supported; expected BPE.");
        if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.GetBoolean())
            throw new NotSupportedException("tokenizer.json: byte_fallback BPE (SentencePiece style) is not supported; expected byte-level BPE.");

        var vocabulary = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32(), StringComparer.Ordinal);
        var ranks = new Dictionary<(string, string), int>();
        var rank = 0;
        foreach (var merge in model.GetProperty("merges").EnumerateArray())
        {
            // Older files write "a b", newer ones ["a", "b"].
            (string, string) pair;
            if (merge.ValueKind == JsonValueKind.String)
            {
                var text = merge.GetString()!;
                var space = text.IndexOf(' ', StringComparison.Ordinal);
                pair = (text[..space], text[(space + 1)..]);
            }
            else
            {
                pair = (merge[0].GetString()!, merge[1].GetString()!);
            }
            ranks.TryAdd(pair, rank++);
        }
        var added = root.TryGetProperty("added_tokens", out var addedElement)
            ? addedElement.EnumerateArray().Select(a => new AddedToken(a.GetProperty("id").GetInt32(), a.GetProperty("content").GetString()!,
                a.TryGetProperty("special", out var s) && s.GetBoolean())).ToList()
            : [];
        var preTokenizer = root.TryGetProperty("pre_tokenizer", out var pre) ? PreTokenizer.Parse(pre) : PreTokenizer.None;
        var ignoreMerges = model.TryGetProperty("ignore_merges", out var ignore) && ignore.GetBoolean();
        return new BpeTokenizer(vocabulary, ranks, added, preTokenizer, ignoreMerges);
    }

    public int? IdOf(string token) =>
        _addedByContent.TryGetValue(token, out var added) ? added.Id : _vocabulary.TryGetValue(token, out var id) ? id : null;

    /// <summary>
    /// Token ids of <paramref name="text"/>. Added tokens written in the text are matched as their ids
    /// unless <paramref name="splitSpecialTokens"/> is true (Hugging Face's <c>split_special_tokens</c>),
    /// which encodes them as the ordinary text they are: what client-supplied chat content needs, so a
    /// message cannot forge a turn marker.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool splitSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        var position = 0;
        if (_addedPattern is not null && !splitSpecialTokens)
        {
            foreach (Match match in _addedPattern.Matches(text))
            {
                EncodeOrdinary(text[position..match.Index], ids);
                ids.Add(_addedByContent[match.Value].Id);
                position = match.Index + match.Length;
            }
        }
        EncodeOrdinary(text[position..], ids);
        return ids;
    }

    private void EncodeOrdinary(string text, List<int> into)
    {
        if (text.Length == 0) return;
        foreach (var piece in _preTokenizer.Split(text))
        {
            if (piece.Length == 0) continue;
            var word = ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(piece));
            if (!_wordCache.TryGetValue(word, out var ids))
            {
                ids = EncodeWord(word);
                if (Volatile.Read(ref _wordCacheSize) < WordCacheLimit && _wordCache.TryAdd(word, ids))
                    Interlocked.Increment(ref _wordCacheSize);
            }
            into.AddRange(ids);
        }
    }

    private int[] EncodeWord(string word)
    {
        if (_ignoreMerges && _vocabulary.TryGetValue(word, out var whole)) return [whole];
        var symbols = word.Select(c => c.ToString()).ToList();
        while (symbols.Count > 1)
        {
            var bestRank = int.MaxValue;
            var bestAt = -1;
            for (var i = 0; i < symbols.Count - 1; i++)
                if (_mergeRank.TryGetValue((symbols[i], symbols[i + 1]), out var r) && r < bestRank)
                {
                    bestRank = r;
                    bestAt = i;
                }
            if (bestAt < 0) break;
            var (left, right) = (symbols[bestAt], symbols[bestAt + 1]);
            var merged = new List<string>(symbols.Count);
            for (var i = 0; i < symbols.Count; i++)
            {
                if (i < symbols.Count - 1 && symbols[i] == left && symbols[i + 1] == right)
                {
                    merged.Add(left + right);
                    i++;
                }
                else
                {
                    merged.Add(symbols[i]);
                }
            }
            symbols = merged;
        }
        return symbols.Select(s => _vocabulary.TryGetValue(s, out var id)
            ? id
            : throw new InvalidOperationException($"tokenizer.json: symbol '{s}' is not in the vocabulary; the byte-level alphabet is incomplete.")).ToArray();
    }

    /// <summary>
    /// Text of token ids; invalid UTF-8 (a token cut mid-character) becomes U+FFFD. Ids the tokenizer
    /// does not know decode to nothing, as Hugging Face's tokenizers do: real checkpoints pad the
    /// embedding table past the tokenizer, and the model may sample such an id.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        void Flush()
        {
            text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
        foreach (var id in ids)
        {
            if (id < 0 || id >= _tokenOfId.Length || _tokenOfId[id] is null) continue;
            if (_addedById.TryGetValue(id, out var added))
            {
                Flush();
                if (!(skipSpecialTokens && added.Special)) text.Append(added.Content);
                continue;
            }
            // A vocabulary entry outside the byte-level alphabet has no bytes to give.
            var before = bytes.Count;
            if (!ByteLevelAlphabet.TryDecode(_tokenOfId[id], bytes)) bytes.RemoveRange(before, bytes.Count - before);
        }
        Flush();
        return text.ToString();
    }
}
