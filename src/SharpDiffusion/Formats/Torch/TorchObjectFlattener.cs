using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using SharpDiffusion.Formats.Pickle;

namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// Flattens an unpickled object tree into tensor names and metadata (the convention all readers share):
/// names are dotted paths (dict keys as text, list/tuple indices as numbers); a root dict's "state_dict" is
/// unwrapped (its tensors unprefixed, the other root entries give metadata only); scalar leaves become
/// metadata text, lists of scalars compact JSON.
/// </summary>
internal sealed class TorchObjectFlattener
{
    /// <summary>Deeper trees are refused: real checkpoints nest a handful of levels; cycles would never end.</summary>
    public const int MaxDepth = 100;

    /// <summary>
    /// Visits allowed in total, so a pickle that shares one list many times cannot explode (an SD checkpoint
    /// has a few thousand nodes; the largest real trees stay far below this).
    /// </summary>
    public const int MaxVisits = 2_000_000;

    /// <summary>Scalar leaves allowed: metadata is for reading, not a place for millions of entries.</summary>
    public const int MaxMetadataEntries = 100_000;

    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _visits;

    public List<KeyValuePair<string, PickledTensor>> Tensors { get; } = new();
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public static TorchObjectFlattener Flatten(object? root)
    {
        var f = new TorchObjectFlattener();
        if (root is PickleDict dict && dict.TryGetValue("state_dict", out var sd) && sd is PickleDict stateDict)
        {
            f.Visit(stateDict, "", tensors: true, 0);
            foreach (var e in dict.Entries)
            {
                if (e.Key is "state_dict") continue;
                f.Visit(e.Value, KeyText(e.Key), tensors: false, 1);
            }
        }
        else f.Visit(root, "", tensors: true, 0);
        return f;
    }

    private void Visit(object? value, string path, bool tensors, int depth)
    {
        if (depth > MaxDepth) throw new PickleFormatException($"object tree nested deeper than {MaxDepth} levels at '{path}'");
        if (++_visits > MaxVisits) throw new PickleFormatException($"object tree has more than {MaxVisits} nodes");
        switch (value)
        {
            case PickledTensor t:
                if (tensors && _names.Add(path.Length == 0 ? "tensor" : path)) Tensors.Add(new(path.Length == 0 ? "tensor" : path, t));
                break;
            case PickleDict d:
                foreach (var e in d.Entries) Visit(e.Value, Join(path, KeyText(e.Key)), tensors, depth + 1);
                break;
            case IReadOnlyList<object?> seq:
                if (seq.All(IsScalar)) AddMetadata(path, JsonList(seq));
                else for (int i = 0; i < seq.Count; i++) Visit(seq[i], Join(path, i.ToString(CultureInfo.InvariantCulture)), tensors, depth + 1);
                break;
            case PickleSet set:
                if (set.Items.All(IsScalar)) AddMetadata(path, JsonList(set.Items));
                break;
            case PickleObject o:
                if (o.State is PickleDict state) Visit(state, path, tensors, depth + 1);
                break;
            default:
                if (IsScalar(value)) AddMetadata(path, ScalarText(value));
                break; // bytes, storages and numpy arrays carry no names or text worth showing
        }
    }

    private void AddMetadata(string path, string text)
    {
        if (Metadata.Count >= MaxMetadataEntries) throw new PickleFormatException($"object tree has more than {MaxMetadataEntries} metadata entries");
        Metadata.TryAdd(path.Length == 0 ? "value" : path, text);
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private static bool IsScalar(object? v) => v is null or bool or long or BigInteger or double or string or PickleGlobal;

    /// <summary>Dict keys as text: strings raw, numbers invariant, tuples joined by commas.</summary>
    public static string KeyText(object? key) => key switch
    {
        string s => s,
        PickleTuple t => string.Join(",", t.Select(KeyText)),
        byte[] b => Encoding.Latin1.GetString(b),
        _ when IsScalar(key) => ScalarText(key),
        _ => PickleValues.TypeName(key),
    };

    /// <summary>Metadata text of a scalar: strings raw, ints invariant, floats round-trip with Python's ".0", true/false/null.</summary>
    public static string ScalarText(object? v) => v switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger bi => bi.ToString(CultureInfo.InvariantCulture),
        double d => FloatText(d),
        string s => s,
        PickleGlobal g => g.FullName,
        _ => PickleValues.TypeName(v),
    };

    private static string FloatText(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        string s = d.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e");
        return s.AsSpan().IndexOfAny(".en") < 0 ? s + ".0" : s;
    }

    private static string JsonList(IEnumerable<object?> items)
    {
        var sb = new StringBuilder("[");
        bool first = true;
        foreach (var item in items)
        {
            if (!first) sb.Append(',');
            first = false;
            sb.Append(item is string or PickleGlobal ? JsonSerializer.Serialize(ScalarText(item)) : item is double d && !double.IsFinite(d) ? "null" : ScalarText(item));
        }
        return sb.Append(']').ToString();
    }
}
