using System.Text;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>
/// Follows a JSON reader through a body token by token: where it stands, as errors name a field
/// (<c>messages[0].content</c>), and which keys each open object already had. JSON leaves the meaning
/// of a key sent twice to the reader: System.Text.Json keeps the last, a proxy or a log in front of
/// this server may keep the first, so one body could be read as two different requests.
/// </summary>
internal sealed class JsonKeyPath
{
    private readonly List<Level> _levels = [];

    /// <summary>An object or array was opened, as the current value of the level holding it.</summary>
    public void Enter(bool isObject)
    {
        Value();
        _levels.Add(new Level(isObject));
    }

    /// <summary>The innermost object or array was closed.</summary>
    public void Leave() => _levels.RemoveAt(_levels.Count - 1);

    /// <summary>A scalar value: in an array, the next element.</summary>
    public void Value()
    {
        if (_levels.Count > 0 && _levels[^1] is { IsObject: false } array) array.Index++;
    }

    /// <summary>A key of the innermost object; false when that object already had it.</summary>
    public bool TryAddKey(string key)
    {
        var level = _levels[^1];
        level.Key = key;
        return level.Keys!.Add(key);
    }

    /// <summary>The path to the current key or element, such as <c>messages[0].content</c>.</summary>
    public string Current
    {
        get
        {
            var path = new StringBuilder();
            foreach (var level in _levels)
            {
                if (!level.IsObject) path.Append('[').Append(level.Index).Append(']');
                else if (path.Length == 0) path.Append(level.Key);
                else path.Append('.').Append(level.Key);
            }
            return path.ToString();
        }
    }

    private sealed class Level(bool isObject)
    {
        public bool IsObject { get; } = isObject;
        public HashSet<string>? Keys { get; } = isObject ? new(StringComparer.Ordinal) : null;
        public string? Key { get; set; }
        public int Index { get; set; } = -1;
    }
}
