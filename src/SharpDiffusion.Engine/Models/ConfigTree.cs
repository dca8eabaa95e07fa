using System.Globalization;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// A parsed configuration document (LDM/sgm yaml or its json form) as plain values:
/// <see cref="IReadOnlyDictionary{TKey,TValue}"/> of string to value, <see cref="IReadOnlyList{T}"/> of values,
/// <c>string</c>, <c>long</c>, <c>double</c>, <c>bool</c> or <c>null</c>. Accessors name the path in their errors.
/// </summary>
public sealed class ConfigTree
{
    public ConfigTree(object? root, string source)
    {
        Root = root;
        Source = source;
    }

    public object? Root { get; }

    /// <summary>Where the document came from, used in error messages.</summary>
    public string Source { get; }

    /// <summary>The value at a dotted path of map keys, or null when any step is missing.</summary>
    public object? Find(string dottedPath) => Find(Root, dottedPath);

    public static object? Find(object? node, string dottedPath)
    {
        foreach (var key in dottedPath.Split('.'))
        {
            if (node is not IReadOnlyDictionary<string, object?> map || !map.TryGetValue(key, out node)) return null;
        }
        return node;
    }

    public static bool IsMap(object? node) => node is IReadOnlyDictionary<string, object?>;

    public static long? Integer(object? node) => node switch
    {
        long l => l,
        double d when d == Math.Floor(d) => (long)d,
        string s when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
        _ => null,
    };

    public static double? Number(object? node) => node switch
    {
        long l => l,
        double d => d,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => null,
    };

    public static bool? Boolean(object? node) => node switch
    {
        bool b => b,
        long l => l != 0,
        _ => null,
    };

    /// <summary>A list of integers; a single integer counts as a one-element list.</summary>
    public static IReadOnlyList<long>? IntegerList(object? node)
    {
        if (node is IReadOnlyList<object?> list)
        {
            var result = new List<long>(list.Count);
            foreach (var item in list)
            {
                var value = Integer(item);
                if (value == null) return null;
                result.Add(value.Value);
            }
            return result;
        }
        var single = Integer(node);
        return single == null ? null : new[] { single.Value };
    }
}
