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
    private readonly BpeMerges _merges;
    // Byte-level characters (one per UTF-8 byte) to their ids: a word's initial symbols.
    private readonly int[] _idOfChar;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly Regex? _addedPattern;
    private readonly PreTokenizer _preTokenizer;
    private readonly bool _ignoreMerges;
    private readonly WordCache _wordCache;

    private BpeTokenizer(Dictionary<string, int> vocabulary, BpeMerges merges,
        IReadOnlyList<AddedToken> added, PreTokenizer preTokenizer, bool ignoreMerges, long wordCacheBytes)
    {
        _vocabulary = vocabulary;
        _merges = merges;
        _wordCache = new WordCache(wordCacheBytes);
        _preTokenizer = preTokenizer;
        _ignoreMerges = ignoreMerges;
        _addedById = added.ToDictionary(a => a.Id);
        _addedByContent = added.ToDictionary(a => a.Content, StringComparer.Ordinal);
        AddedTokens = added;
        var size = Math.Max(vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(a => a.Id) + 1);
        _tokenOfId = new string[size];
        foreach (var (token, id) in vocabulary) _tokenOfId[id] = token;
        foreach (var token in added) _tokenOfId[token.Id] = token.Content;
        var singles = vocabulary.Where(p => p.Key.Length == 1).ToList();
        _idOfChar = new int[singles.Count == 0 ? 0 : singles.Max(p => p.Key[0]) + 1];
        Array.Fill(_idOfChar, -1);
        foreach (var (token, id) in singles) _idOfChar[token[0]] = id;
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

    /// <summary>Bytes the word cache may hold (<see cref="WordCache"/>).</summary>
    internal long WordCacheCapacityBytes => _wordCache.CapacityBytes;

    /// <summary>Bytes the word cache holds now.</summary>
    internal long WordCacheBytes => _wordCache.Bytes;

    internal int WordCacheCount => _wordCache.Count;

    public static BpeTokenizer Parse(string json) => Parse(json, WordCache.DefaultCapacityBytes);

    /// <exception cref="NotSupportedException">A feature of the file this tokenizer does not implement.</exception>
    /// <exception cref="InvalidDataException">A merge names a token the vocabulary does not have.</exception>
    internal static BpeTokenizer Parse(string json, long wordCacheBytes)
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
        var merges = new List<(int, int, int)>();
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
            // Hugging Face refuses such a file at load too; a merge outside the vocabulary could only fail later, mid-request.
            if (!vocabulary.TryGetValue(pair.Item1, out var left) || !vocabulary.TryGetValue(pair.Item2, out var right)
                || !vocabulary.TryGetValue(pair.Item1 + pair.Item2, out var merged))
                throw new InvalidDataException($"tokenizer.json: merge \"{pair.Item1} {pair.Item2}\" names a token that is not in the vocabulary.");
            merges.Add((left, right, merged));
        }
        var added = root.TryGetProperty("added_tokens", out var addedElement)
            ? addedElement.EnumerateArray().Select(a => new AddedToken(a.GetProperty("id").GetInt32(), a.GetProperty("content").GetString()!,
                a.TryGetProperty("special", out var s) && s.GetBoolean())).ToList()
            : [];
        var preTokenizer = root.TryGetProperty("pre_tokenizer", out var pre) ? PreTokenizer.Parse(pre) : PreTokenizer.None;
        var ignoreMerges = model.TryGetProperty("ignore_merges", out var ignore) && ignore.GetBoolean();
        return new BpeTokenizer(vocabulary, new BpeMerges(merges), added, preTokenizer, ignoreMerges, wordCacheBytes);
    }

    /// <summary>The id of the added token spelled <paramref name="content"/>; null when the vocabulary has no such added token.</summary>
    public int? AddedTokenId(string content) => _addedByContent.TryGetValue(content, out var added) ? added.Id : null;

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
            if (!_wordCache.TryGet(word, out var ids))
            {
                ids = EncodeWord(word);
                _wordCache.Add(word, ids);
            }
            into.AddRange(ids);
        }
    }

    private int[] EncodeWord(string word)
    {
        if (_ignoreMerges && _vocabulary.TryGetValue(word, out var whole)) return [whole];
        var symbols = new int[word.Length];
        for (var i = 0; i < word.Length; i++)
        {
            var c = word[i];
            symbols[i] = c < _idOfChar.Length ? _idOfChar[c] : -1;
            // Merges only join vocabulary tokens, so a character outside it would stay a symbol without an id.
            if (symbols[i] < 0)
                throw new InvalidOperationException($"tokenizer.json: symbol '{c}' is not in the vocabulary; the byte-level alphabet is incomplete.");
        }
        return _merges.Apply(symbols);
    }

    /// <summary>
    /// The bytes an ordinary token decodes to (what constrained decoding walks its grammar with); null
    /// for an added (special) token, an id the tokenizer does not know, or an entry outside the
    /// byte-level alphabet.
    /// </summary>
    public byte[]? BytesOf(int id)
    {
        if (id < 0 || id >= _tokenOfId.Length || _tokenOfId[id] is null || _addedById.ContainsKey(id)) return null;
        var bytes = new List<byte>(_tokenOfId[id].Length);
        return ByteLevelAlphabet.TryDecode(_tokenOfId[id], bytes) ? [.. bytes] : null;
    }

    /// <summary>
    /// Text of token ids; invalid UTF-8 (a token cut mid-character) becomes U+FFFD. Ids the tokenizer
    /// does not know decode to nothing, as Hugging Face's tokenizers do: real checkpoints pad the
    /// embedding table past the tokenizer, and the model may sample such an id.
    /// </summary>
    /// <remarks><paramref name="keepSpecial"/>: special tokens written out even when skipping the others (the chat template's tool-call markers, which a parser reads in the text).</remarks>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false, IReadOnlySet<string>? keepSpecial = null)
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
                if (!(skipSpecialTokens && added.Special) || keepSpecial?.Contains(added.Content) == true) text.Append(added.Content);
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

/// <summary>A token matched verbatim before pre-tokenisation (<c>added_tokens</c> of tokenizer.json).</summary>
public sealed record AddedToken(int Id, string Content, bool Special);
