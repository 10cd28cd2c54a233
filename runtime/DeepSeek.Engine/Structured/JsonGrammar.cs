namespace DeepSeek.Engine.Structured;

// The grammar a JSON schema compiles to (JsonSchemaCompiler), and the byte-level pushdown automaton
// that walks it. A node is one value the schema allows; a frame is where the automaton is inside one
// value; a stack of frames is one way to read the bytes so far; a GrammarState is every such way
// (anyOf may leave several open). The output is compact JSON: no whitespace between tokens, object
// keys in the schema's order, numbers of at most 15 integer and 15 fraction digits and a two-digit
// exponent (so every number parses to a finite double).

/// <summary>One value a schema allows. <see cref="MinLength"/>: the fewest bytes of a complete value.</summary>
internal abstract class JsonNode
{
    public int MinLength { get; protected set; }
}

internal sealed class StringNode : JsonNode
{
    public static StringNode Instance { get; } = new();

    private StringNode() => MinLength = 2;
}

internal sealed class NumberNode : JsonNode
{
    public static NumberNode Number { get; } = new(false);
    public static NumberNode Integer { get; } = new(true);

    private NumberNode(bool integer)
    {
        IsInteger = integer;
        MinLength = 1;
    }

    public bool IsInteger { get; }
}

/// <summary>A closed set of literal texts (enum, const, true/false, null).</summary>
internal sealed class LiteralNode : JsonNode
{
    public LiteralNode(IReadOnlyList<byte[]> texts)
    {
        Trie = ByteTrie.Build(texts);
        MinLength = Trie.MinToTerminal(0);
    }

    public ByteTrie Trie { get; }
}

internal sealed class ArrayNode : JsonNode
{
    public ArrayNode(JsonNode items, int minItems, int maxItems)
    {
        Items = items;
        MinItems = minItems;
        MaxItems = maxItems;
    }

    public JsonNode Items { get; }
    public int MinItems { get; }
    public int MaxItems { get; }

    /// <summary>Set once the items' minimum is known (items may be the recursive any-value node).</summary>
    public void Seal() => MinLength = 1 + Rest(0);

    /// <summary>Fewest bytes after <c>[</c> or after item <paramref name="count"/>, up to and including <c>]</c>.</summary>
    public int Rest(int count)
    {
        var missing = Math.Max(0, MinItems - count);
        if (missing == 0) return 1;
        return (count == 0 ? Items.MinLength + ((missing - 1) * (1 + Items.MinLength)) : missing * (1 + Items.MinLength)) + 1;
    }
}

/// <summary>An object with known properties, written in the schema's order; optional ones may be skipped.</summary>
internal sealed class ObjectNode : JsonNode
{
    private readonly int[] _restClose;
    private readonly int[] _firstRequiredFrom;

    public ObjectNode(IReadOnlyList<(string Name, byte[] KeyLiteral, JsonNode Value, bool Required)> properties)
    {
        Properties = properties;
        Keys = ByteTrie.Build([.. properties.Select(p => p.KeyLiteral)]);
        var count = properties.Count;
        _firstRequiredFrom = new int[count + 1];
        _firstRequiredFrom[count] = count;
        for (var p = count - 1; p >= 0; p--) _firstRequiredFrom[p] = properties[p].Required ? p : _firstRequiredFrom[p + 1];
        _restClose = new int[count + 1];
    }

    public IReadOnlyList<(string Name, byte[] KeyLiteral, JsonNode Value, bool Required)> Properties { get; }

    /// <summary>The keys as <c>"name":</c>, each terminal's value its property index.</summary>
    public ByteTrie Keys { get; }

    /// <summary>Set once the values' minimums are known.</summary>
    public void Seal()
    {
        var count = Properties.Count;
        _restClose[count] = 1;
        for (var p = count - 1; p >= 0; p--)
            _restClose[p] = _restClose[p + 1] + (Properties[p].Required ? 1 + Properties[p].KeyLiteral.Length + Properties[p].Value.MinLength : 0);
        MinLength = 1 + AfterOpenRest();
    }

    /// <summary>The last property that may come next when the next unwritten one is <paramref name="next"/>: no required one may be skipped.</summary>
    public int Limit(int next) => Math.Min(_firstRequiredFrom[next], Properties.Count - 1);

    public bool RequiredFrom(int next) => _firstRequiredFrom[next] < Properties.Count;

    /// <summary>Fewest bytes, after a value, to write the remaining required properties and <c>}</c>.</summary>
    public int RestClose(int next) => _restClose[next];

    /// <summary>Fewest bytes through the end of the object when property <paramref name="p"/> comes next (its key not started).</summary>
    public int Through(int p) => Properties[p].KeyLiteral.Length + Properties[p].Value.MinLength + _restClose[p + 1];

    public int AfterOpenRest() => RequiredFrom(0) ? AfterCommaRest(0) : 1;

    public int AfterCommaRest(int next)
    {
        var best = int.MaxValue;
        for (var p = next; p <= Limit(next); p++) best = Math.Min(best, Through(p));
        return best;
    }
}

/// <summary>Any object (<c>json_object</c>, or an object schema without properties): string keys, any values.</summary>
internal sealed class AnyObjectNode : JsonNode
{
    public static AnyObjectNode Instance { get; } = new();

    private AnyObjectNode() => MinLength = 2;
}

internal sealed class AnyOfNode : JsonNode
{
    public AnyOfNode(IReadOnlyList<JsonNode> alternatives) => Alternatives = alternatives;

    public IReadOnlyList<JsonNode> Alternatives { get; }

    public void Seal() => MinLength = Alternatives.Min(a => a.MinLength);
}

/// <summary>Any JSON value; containers nest at most <see cref="JsonGrammar.MaxAnyDepth"/> deep.</summary>
internal sealed class AnyValueNode : JsonNode
{
    public static AnyValueNode Instance { get; } = new();

    private AnyValueNode() => MinLength = 1;

    public static ArrayNode AnyArray { get; } = CreateArray();

    public static LiteralNode Keywords { get; } = new([.. new[] { "true", "false", "null" }.Select(System.Text.Encoding.ASCII.GetBytes)]);

    private static ArrayNode CreateArray()
    {
        var array = new ArrayNode(Instance, 0, int.MaxValue);
        array.Seal();
        return array;
    }
}

// Nodes that frame JSON values in surrounding text (a tool call: its markers, the function's name, then
// its arguments as a document of the function's schema; ToolCallGrammar builds them).

/// <summary>Parts one after another; none may be empty.</summary>
internal sealed class SequenceNode : JsonNode
{
    public SequenceNode(IReadOnlyList<JsonNode> parts)
    {
        Parts = parts;
        _restFrom = new int[parts.Count + 1];
        for (var p = parts.Count - 1; p >= 0; p--) _restFrom[p] = _restFrom[p + 1] + parts[p].MinLength;
        MinLength = _restFrom[0];
    }

    private readonly int[] _restFrom;

    public IReadOnlyList<JsonNode> Parts { get; }

    /// <summary>Fewest bytes of parts <paramref name="next"/> onwards.</summary>
    public int RestFrom(int next) => _restFrom[next];
}

/// <summary><see cref="First"/>, then up to <c>Max - 1</c> more of <see cref="Next"/> (which carries any separator); at least <see cref="Min"/> in all (1 or more).</summary>
internal sealed class RepeatNode : JsonNode
{
    public RepeatNode(JsonNode first, JsonNode next, int min, int max)
    {
        First = first;
        Next = next;
        Min = min;
        Max = max;
        MinLength = Rest(0);
    }

    public JsonNode First { get; }
    public JsonNode Next { get; }
    public int Min { get; }
    public int Max { get; }

    /// <summary>Fewest bytes still needed once <paramref name="count"/> items are written.</summary>
    public int Rest(int count) => count >= Min ? 0 : (count == 0 ? First.MinLength + ((Min - 1) * Next.MinLength) : (Min - count) * Next.MinLength);
}

/// <summary>One of several keys (literal texts, none a prefix of another), each followed by its own value.</summary>
internal sealed class KeyedChoiceNode : JsonNode
{
    private readonly int[] _minThrough;

    public KeyedChoiceNode(IReadOnlyList<(byte[] Key, JsonNode Value)> choices)
    {
        Choices = choices;
        Keys = ByteTrie.Build([.. choices.Select(c => c.Key)]);
        _minThrough = new int[Keys.NodeCount];
        for (var n = 0; n < Keys.NodeCount; n++)
            _minThrough[n] = Keys.Values(n).Min(c => choices[c].Key.Length - Keys.Depth(n) + choices[c].Value.MinLength);
        MinLength = _minThrough[0];
    }

    public IReadOnlyList<(byte[] Key, JsonNode Value)> Choices { get; }

    public ByteTrie Keys { get; }

    /// <summary>Fewest bytes to finish from key trie node <paramref name="node"/>, the value included.</summary>
    public int MinThrough(int node) => _minThrough[node];
}

/// <summary>A trie of byte strings; node 0 is the root; a terminal holds the index of the string it ends.</summary>
internal sealed class ByteTrie
{
    private readonly List<Dictionary<byte, int>> _children = [];
    private readonly List<int> _terminal = [];
    private readonly List<int> _depth = [];
    private int[] _minToTerminal = [];
    private int[][] _values = [];

    public static ByteTrie Build(IReadOnlyList<byte[]> texts)
    {
        var trie = new ByteTrie();
        trie.NewNode(0);
        for (var i = 0; i < texts.Count; i++)
        {
            var node = 0;
            foreach (var b in texts[i])
            {
                if (!trie._children[node].TryGetValue(b, out var child))
                {
                    child = trie.NewNode(trie._depth[node] + 1);
                    trie._children[node][b] = child;
                }
                node = child;
            }
            if (trie._terminal[node] < 0) trie._terminal[node] = i;
        }
        var count = trie._children.Count;
        trie._minToTerminal = new int[count];
        trie._values = new int[count][];
        // Children always have larger ids than their parent: one pass from the leaves up.
        for (var n = count - 1; n >= 0; n--)
        {
            var min = trie._terminal[n] >= 0 ? 0 : int.MaxValue / 2;
            var values = new List<int>();
            if (trie._terminal[n] >= 0) values.Add(trie._terminal[n]);
            foreach (var child in trie._children[n].Values)
            {
                min = Math.Min(min, 1 + trie._minToTerminal[child]);
                values.AddRange(trie._values[child]);
            }
            trie._minToTerminal[n] = min;
            values.Sort();
            trie._values[n] = [.. values];
        }
        return trie;
    }

    private int NewNode(int depth)
    {
        _children.Add([]);
        _terminal.Add(-1);
        _depth.Add(depth);
        return _children.Count - 1;
    }

    public int NodeCount => _children.Count;

    public int Child(int node, byte b) => _children[node].TryGetValue(b, out var child) ? child : -1;

    public bool HasChildren(int node) => _children[node].Count > 0;

    /// <summary>The index of the text ending here, or -1.</summary>
    public int Terminal(int node) => _terminal[node];

    public int Depth(int node) => _depth[node];

    public int MinToTerminal(int node) => _minToTerminal[node];

    /// <summary>Indices of the texts through this node, ascending.</summary>
    public int[] Values(int node) => _values[node];
}

/// <summary>Where the automaton is inside one value.</summary>
internal abstract record Frame
{
    /// <summary>Complete as it stands: may end without another byte (a number, an enum value that another extends).</summary>
    public virtual bool Accepting => false;

    /// <summary>Fewest bytes to finish this value.</summary>
    public abstract int Remaining { get; }

    /// <summary>Every stack that reading <paramref name="b"/> leads to, with this frame on top of <paramref name="below"/>.</summary>
    public abstract void Feed(byte b, Stack? below, List<Stack?> into);
}

/// <summary>One reading: frames from the innermost value out. Null stands for the finished document.</summary>
internal sealed record Stack(Frame Top, Stack? Below)
{
    public int Depth { get; } = 1 + (Below?.Depth ?? 0);

    public int Remaining { get; } = Top.Remaining + (Below?.Remaining ?? 0);
}

internal static class JsonGrammar
{
    /// <summary>How deep containers of an any-value (<c>json_object</c>) may nest.</summary>
    public const int MaxAnyDepth = 16;

    /// <summary>The most readings one state keeps (anyOf alternatives sharing a prefix).</summary>
    public const int MaxReadings = 64;

    /// <summary>The frames a value of <paramref name="node"/> starts in, each on <paramref name="below"/>.</summary>
    public static void Push(JsonNode node, Stack? below, List<Stack?> into)
    {
        switch (node)
        {
            case AnyOfNode anyOf:
                foreach (var alternative in anyOf.Alternatives) Push(alternative, below, into);
                break;
            case AnyValueNode:
                if ((below?.Depth ?? 0) < MaxAnyDepth)
                {
                    Push(AnyObjectNode.Instance, below, into);
                    Push(AnyValueNode.AnyArray, below, into);
                }
                Push(StringNode.Instance, below, into);
                Push(NumberNode.Number, below, into);
                Push(AnyValueNode.Keywords, below, into);
                break;
            default:
                into.Add(new Stack(Start(node), below));
                break;
        }
    }

    /// <summary>A value of <paramref name="node"/> begins with <paramref name="b"/>.</summary>
    public static void Begin(JsonNode node, Stack? below, byte b, List<Stack?> into)
    {
        var starts = new List<Stack?>(4);
        Push(node, below, starts);
        foreach (var start in starts) Feed(start, b, into);
    }

    public static void Feed(Stack? stack, byte b, List<Stack?> into)
    {
        if (stack is null) return; // The document is finished: nothing may follow.
        stack.Top.Feed(b, stack.Below, into);
    }

    private static Frame Start(JsonNode node) => node switch
    {
        StringNode => new StringFrame(StringPhase.Start, 0),
        NumberNode number => new NumberFrame(number.IsInteger, NumberPhase.Start, 0),
        LiteralNode literal => new LiteralFrame(literal, 0),
        ArrayNode array => new ArrayFrame(array, ContainerPhase.Start, 0),
        ObjectNode obj => new ObjectFrame(obj, ContainerPhase.Start, 0, 0),
        AnyObjectNode => new AnyObjectFrame(ContainerPhase.Start),
        SequenceNode sequence => new SequenceFrame(sequence, 0),
        RepeatNode repeat => new RepeatFrame(repeat, 0),
        KeyedChoiceNode choice => new KeyedChoiceFrame(choice, 0),
        _ => throw new InvalidOperationException($"No frame for {node.GetType().Name}."),
    };
}

internal enum StringPhase { Start, In, Escape, Hex, Utf8 }

internal sealed record StringFrame(StringPhase Phase, int Pending) : Frame
{
    public override int Remaining => Phase switch
    {
        StringPhase.Start => 2,
        StringPhase.In => 1,
        StringPhase.Escape => 2,
        _ => Pending + 1,
    };

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        var next = Next(b);
        if (next == Closed) into.Add(below);
        else if (next is not null) into.Add(new Stack(next, below));
    }

    private static readonly StringFrame Closed = new(StringPhase.Start, -1);
    private static readonly StringFrame Inside = new(StringPhase.In, 0);

    private StringFrame? Next(byte b)
    {
        switch (Phase)
        {
            case StringPhase.Start:
                return b == (byte)'"' ? Inside : null;
            case StringPhase.In:
                if (b == (byte)'"') return Closed;
                if (b == (byte)'\\') return new StringFrame(StringPhase.Escape, 0);
                if (b is >= 0x20 and < 0x80) return Inside;
                if (b is >= 0xC2 and <= 0xDF) return new StringFrame(StringPhase.Utf8, 1);
                if (b is >= 0xE0 and <= 0xEF) return new StringFrame(StringPhase.Utf8, 2);
                if (b is >= 0xF0 and <= 0xF4) return new StringFrame(StringPhase.Utf8, 3);
                return null;
            case StringPhase.Utf8:
                if (b is < 0x80 or > 0xBF) return null;
                return Pending == 1 ? Inside : new StringFrame(StringPhase.Utf8, Pending - 1);
            case StringPhase.Escape:
                if (b == (byte)'u') return new StringFrame(StringPhase.Hex, 4);
                return b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t' ? Inside : null;
            default:
                if (!Uri.IsHexDigit((char)b)) return null;
                return Pending == 1 ? Inside : new StringFrame(StringPhase.Hex, Pending - 1);
        }
    }
}

internal enum NumberPhase { Start, Minus, Zero, Integer, Dot, Fraction, Exponent, ExponentSign, ExponentDigits }

internal sealed record NumberFrame(bool IsInteger, NumberPhase Phase, int Digits) : Frame
{
    public const int MaxDigits = 15;
    public const int MaxExponentDigits = 2;

    public override bool Accepting => Phase is NumberPhase.Zero or NumberPhase.Integer or NumberPhase.Fraction or NumberPhase.ExponentDigits;

    public override int Remaining => Accepting ? 0 : 1;

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        var digit = b is >= (byte)'0' and <= (byte)'9';
        NumberFrame? next = Phase switch
        {
            NumberPhase.Start when b == (byte)'-' => this with { Phase = NumberPhase.Minus },
            NumberPhase.Start or NumberPhase.Minus when b == (byte)'0' => this with { Phase = NumberPhase.Zero },
            NumberPhase.Start or NumberPhase.Minus when digit => this with { Phase = NumberPhase.Integer, Digits = 1 },
            NumberPhase.Integer when digit && Digits < MaxDigits => this with { Digits = Digits + 1 },
            NumberPhase.Zero or NumberPhase.Integer when !IsInteger && b == (byte)'.' => this with { Phase = NumberPhase.Dot, Digits = 0 },
            NumberPhase.Zero or NumberPhase.Integer or NumberPhase.Fraction when !IsInteger && b is (byte)'e' or (byte)'E' => this with { Phase = NumberPhase.Exponent, Digits = 0 },
            NumberPhase.Dot when digit => this with { Phase = NumberPhase.Fraction, Digits = 1 },
            NumberPhase.Fraction when digit && Digits < MaxDigits => this with { Digits = Digits + 1 },
            NumberPhase.Exponent when b is (byte)'+' or (byte)'-' => this with { Phase = NumberPhase.ExponentSign },
            NumberPhase.Exponent or NumberPhase.ExponentSign when digit => this with { Phase = NumberPhase.ExponentDigits, Digits = 1 },
            NumberPhase.ExponentDigits when digit && Digits < MaxExponentDigits => this with { Digits = Digits + 1 },
            _ => null,
        };
        if (next is not null) into.Add(new Stack(next, below));
        else if (Accepting) JsonGrammar.Feed(below, b, into);
    }
}

internal sealed record LiteralFrame(LiteralNode Node, int TrieNode) : Frame
{
    public override bool Accepting => Node.Trie.Terminal(TrieNode) >= 0;

    public override int Remaining => Node.Trie.MinToTerminal(TrieNode);

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        var child = Node.Trie.Child(TrieNode, b);
        if (child >= 0)
        {
            // A literal no other extends ends with its last byte; otherwise it may end later.
            if (Node.Trie.Terminal(child) >= 0 && !Node.Trie.HasChildren(child)) into.Add(below);
            else into.Add(new Stack(this with { TrieNode = child }, below));
        }
        if (Accepting) JsonGrammar.Feed(below, b, into);
    }
}

internal enum ContainerPhase { Start, AfterOpen, InKey, AfterKey, AfterValue, AfterComma }

internal sealed record ArrayFrame(ArrayNode Node, ContainerPhase Phase, int Count) : Frame
{
    public override int Remaining => Phase switch
    {
        ContainerPhase.Start => Node.MinLength,
        ContainerPhase.AfterOpen => Node.MinLength - 1,
        ContainerPhase.AfterValue => Node.Rest(Count),
        // After a comma an item must follow.
        _ => Node.Items.MinLength + Node.Rest(Count + 1),
    };

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        switch (Phase)
        {
            case ContainerPhase.Start:
                if (b == (byte)'[') into.Add(new Stack(this with { Phase = ContainerPhase.AfterOpen }, below));
                break;
            case ContainerPhase.AfterOpen:
                if (b == (byte)']' && Node.MinItems == 0) into.Add(below);
                else if (b != (byte)']' && Node.MaxItems > 0)
                    JsonGrammar.Begin(Node.Items, new Stack(this with { Phase = ContainerPhase.AfterValue, Count = 1 }, below), b, into);
                break;
            case ContainerPhase.AfterValue:
                if (b == (byte)',' && Count < Node.MaxItems) into.Add(new Stack(this with { Phase = ContainerPhase.AfterComma }, below));
                else if (b == (byte)']' && Count >= Node.MinItems) into.Add(below);
                break;
            case ContainerPhase.AfterComma:
                JsonGrammar.Begin(Node.Items, new Stack(this with { Phase = ContainerPhase.AfterValue, Count = Count + 1 }, below), b, into);
                break;
        }
    }
}

/// <summary>An object of known properties; <see cref="Next"/> is the first property not yet written, <see cref="KeyNode"/> the key trie position while a key is written.</summary>
internal sealed record ObjectFrame(ObjectNode Node, ContainerPhase Phase, int Next, int KeyNode) : Frame
{
    public override int Remaining => Phase switch
    {
        ContainerPhase.Start => Node.MinLength,
        ContainerPhase.AfterOpen => Node.AfterOpenRest(),
        ContainerPhase.AfterValue => Node.RestClose(Next),
        ContainerPhase.AfterComma => Node.AfterCommaRest(Next),
        _ => InKeyRest(),
    };

    private int InKeyRest()
    {
        var best = int.MaxValue;
        var written = Node.Keys.Depth(KeyNode);
        foreach (var p in Node.Keys.Values(KeyNode))
            if (p >= Next && p <= Node.Limit(Next)) best = Math.Min(best, Node.Through(p) - written);
        return best;
    }

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        switch (Phase)
        {
            case ContainerPhase.Start:
                if (b == (byte)'{') into.Add(new Stack(this with { Phase = ContainerPhase.AfterOpen }, below));
                break;
            case ContainerPhase.AfterOpen:
                if (b == (byte)'}' && !Node.RequiredFrom(0)) into.Add(below);
                else if (Node.Properties.Count > 0) Key(0, b, below, into);
                break;
            case ContainerPhase.AfterComma:
            case ContainerPhase.InKey:
                Key(Phase == ContainerPhase.InKey ? KeyNode : 0, b, below, into);
                break;
            case ContainerPhase.AfterValue:
                if (b == (byte)',' && Next < Node.Properties.Count) into.Add(new Stack(this with { Phase = ContainerPhase.AfterComma, KeyNode = 0 }, below));
                else if (b == (byte)'}' && !Node.RequiredFrom(Next)) into.Add(below);
                break;
        }
    }

    private void Key(int from, byte b, Stack? below, List<Stack?> into)
    {
        var child = Node.Keys.Child(from, b);
        if (child < 0) return;
        var limit = Node.Limit(Next);
        var reachable = false;
        foreach (var p in Node.Keys.Values(child))
            if (p >= Next && p <= limit)
            {
                reachable = true;
                break;
            }
        if (!reachable) return;
        var property = Node.Keys.Terminal(child);
        if (property >= 0)
        {
            // The key with its colon is written: the value comes next.
            var after = new Stack(this with { Phase = ContainerPhase.AfterValue, Next = property + 1, KeyNode = 0 }, below);
            JsonGrammar.Push(Node.Properties[property].Value, after, into);
        }
        else
        {
            into.Add(new Stack(this with { Phase = ContainerPhase.InKey, KeyNode = child }, below));
        }
    }
}

internal sealed record AnyObjectFrame(ContainerPhase Phase) : Frame
{
    public override int Remaining => Phase switch
    {
        ContainerPhase.Start => 2,
        ContainerPhase.AfterOpen => 1,
        ContainerPhase.AfterKey => 3,
        ContainerPhase.AfterValue => 1,
        _ => 5,
    };

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        switch (Phase)
        {
            case ContainerPhase.Start:
                if (b == (byte)'{') into.Add(new Stack(this with { Phase = ContainerPhase.AfterOpen }, below));
                break;
            case ContainerPhase.AfterOpen when b == (byte)'}':
                into.Add(below);
                break;
            case ContainerPhase.AfterOpen:
            case ContainerPhase.AfterComma:
                if (b == (byte)'"') into.Add(new Stack(new StringFrame(StringPhase.In, 0), new Stack(this with { Phase = ContainerPhase.AfterKey }, below)));
                break;
            case ContainerPhase.AfterKey:
                if (b == (byte)':') JsonGrammar.Push(AnyValueNode.Instance, new Stack(this with { Phase = ContainerPhase.AfterValue }, below), into);
                break;
            case ContainerPhase.AfterValue:
                if (b == (byte)',') into.Add(new Stack(this with { Phase = ContainerPhase.AfterComma }, below));
                else if (b == (byte)'}') into.Add(below);
                break;
        }
    }
}

/// <summary>Part <see cref="Next"/> of a sequence comes next; the later parts wait below it.</summary>
internal sealed record SequenceFrame(SequenceNode Node, int Next) : Frame
{
    public override int Remaining => Node.RestFrom(Next);

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        var after = Next + 1 < Node.Parts.Count ? new Stack(this with { Next = Next + 1 }, below) : below;
        JsonGrammar.Begin(Node.Parts[Next], after, b, into);
    }
}

/// <summary><see cref="Count"/> items written: another may begin, or, once there are enough, what follows.</summary>
internal sealed record RepeatFrame(RepeatNode Node, int Count) : Frame
{
    public override bool Accepting => Count >= Node.Min;

    public override int Remaining => Node.Rest(Count);

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        // Without an upper bound, every count past the minimum is the same state (so their masks are shared).
        var written = Node.Max == int.MaxValue ? Math.Min(Count + 1, Math.Max(Node.Min, 1)) : Count + 1;
        if (Count < Node.Max)
            JsonGrammar.Begin(Count == 0 ? Node.First : Node.Next, new Stack(this with { Count = written }, below), b, into);
        if (Accepting) JsonGrammar.Feed(below, b, into);
    }
}

/// <summary>Inside a key of a keyed choice; its value follows the key's last byte.</summary>
internal sealed record KeyedChoiceFrame(KeyedChoiceNode Node, int KeyNode) : Frame
{
    public override int Remaining => Node.MinThrough(KeyNode);

    public override void Feed(byte b, Stack? below, List<Stack?> into)
    {
        var child = Node.Keys.Child(KeyNode, b);
        if (child < 0) return;
        var chosen = Node.Keys.Terminal(child);
        if (chosen >= 0) JsonGrammar.Push(Node.Choices[chosen].Value, below, into);
        else into.Add(new Stack(this with { KeyNode = child }, below));
    }
}

/// <summary>
/// Every reading of the bytes so far. Equal states allow the same continuations, so a state is the
/// key of the token-mask cache.
/// </summary>
internal sealed class GrammarState : IEquatable<GrammarState>
{
    private readonly Stack?[] _readings;
    private readonly int _hash;

    private GrammarState(Stack?[] readings)
    {
        _readings = readings;
        var hash = new HashCode();
        foreach (var r in readings) hash.Add(r);
        _hash = hash.ToHashCode();
        var best = int.MaxValue;
        foreach (var r in readings)
        {
            best = Math.Min(best, r?.Remaining ?? 0);
            if (r is null || (r.Below is null && r.Top.Accepting)) IsComplete = true;
        }
        Distance = best;
    }

    public static GrammarState Dead { get; } = new([]);

    public static GrammarState Initial(JsonNode root)
    {
        var readings = new List<Stack?>();
        JsonGrammar.Push(root, null, readings);
        return Of(readings);
    }

    private static GrammarState Of(List<Stack?> readings)
    {
        if (readings.Count == 0) return Dead;
        if (readings.Count == 1) return new GrammarState([readings[0]]);
        var distinct = new HashSet<Stack?>(readings);
        var ordered = distinct.OrderBy(r => r?.GetHashCode() ?? 0).Take(JsonGrammar.MaxReadings).ToArray();
        return new GrammarState(ordered);
    }

    /// <summary>No reading survives: the bytes are not the prefix of any document the schema accepts.</summary>
    public bool IsDead => _readings.Length == 0;

    /// <summary>The bytes so far are a whole document: end-of-sequence may come now.</summary>
    public bool IsComplete { get; }

    /// <summary>Fewest bytes that finish a document from here (0 when complete).</summary>
    public int Distance { get; }

    public GrammarState Step(byte b)
    {
        if (IsDead) return this;
        var into = new List<Stack?>(_readings.Length);
        foreach (var reading in _readings) JsonGrammar.Feed(reading, b, into);
        return Of(into);
    }

    public GrammarState Step(ReadOnlySpan<byte> bytes)
    {
        var state = this;
        foreach (var b in bytes)
        {
            state = state.Step(b);
            if (state.IsDead) break;
        }
        return state;
    }

    public bool Equals(GrammarState? other)
    {
        if (other is null || other._hash != _hash || other._readings.Length != _readings.Length) return false;
        for (var i = 0; i < _readings.Length; i++)
            if (!Equals(_readings[i], other._readings[i])) return false;
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as GrammarState);

    public override int GetHashCode() => _hash;
}
