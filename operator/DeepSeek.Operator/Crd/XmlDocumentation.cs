using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace DeepSeek.Operator.Crd;

/// <summary>The summaries of an assembly's XML documentation file, which become schema descriptions.</summary>
public sealed partial class XmlDocumentation
{
    private readonly Dictionary<string, string> summaries;

    private XmlDocumentation(Dictionary<string, string> summaries) => this.summaries = summaries;

    /// <summary>Reads the documentation file the compiler writes next to <paramref name="assembly"/>.</summary>
    public static XmlDocumentation For(Assembly assembly)
    {
        var path = Path.Combine(AppContext.BaseDirectory, assembly.GetName().Name + ".xml");
        if (!File.Exists(path) && !string.IsNullOrEmpty(assembly.Location))
            path = Path.ChangeExtension(assembly.Location, ".xml");
        if (!File.Exists(path))
            throw new FileNotFoundException($"The XML documentation of {assembly.GetName().Name} is missing (expected at {path}); the CRD's descriptions come from it.", path);
        var summaries = XDocument.Load(path).Descendants("member")
            .Where(m => m.Element("summary") is not null)
            .ToDictionary(m => (string)m.Attribute("name")!, m => Normalise(m.Element("summary")!));
        return new XmlDocumentation(summaries);
    }

    public string? OfType(Type type) => summaries.GetValueOrDefault("T:" + Name(type));

    public string? OfProperty(PropertyInfo property) =>
        summaries.GetValueOrDefault("P:" + Name(property.DeclaringType!) + "." + property.Name);

    private static string Name(Type type) => type.FullName!.Replace('+', '.');

    private static string Normalise(XElement summary)
    {
        // <c>x</c> and <see cref="T:X"/> read as their text in a description.
        var text = string.Concat(summary.Nodes().Select(n => n switch
        {
            XText t => t.Value,
            XElement e when e.Attribute("cref") is { } cref => cref.Value[(cref.Value.LastIndexOf('.') + 1)..],
            XElement e => e.Value,
            _ => "",
        }));
        return Whitespace().Replace(text, " ").Trim();
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
