using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>Reads the exact tensor inventories in tests/data/reference (name TAB dtype TAB [shape]).</summary>
public static class ReferenceTsv
{
    public static List<KeyEntry> Load(string fileName)
    {
        var entries = new List<KeyEntry>();
        foreach (var line in File.ReadLines(TestPaths.ReferenceFile(fileName)))
        {
            if (line.Length == 0) continue;
            var parts = line.Split('\t');
            if (!TensorDTypeExtensions.TryParseSafetensorsName(parts[1], out var dtype)) throw new FormatException(fileName + ": bad dtype " + parts[1]);
            var dims = parts[2].Trim('[', ']');
            var shape = dims.Length == 0 ? Array.Empty<long>() : dims.Split(',').Select(d => long.Parse(d, CultureInfo.InvariantCulture)).ToArray();
            entries.Add(new KeyEntry(parts[0], dtype, shape));
        }
        return entries;
    }

    /// <summary>The same tensors with <paramref name="prefix"/> in front of every name (diffusers components).</summary>
    public static IEnumerable<KeyEntry> Prefixed(string fileName, string prefix) => Load(fileName).Select(e => e with { Name = prefix + e.Name });
}
