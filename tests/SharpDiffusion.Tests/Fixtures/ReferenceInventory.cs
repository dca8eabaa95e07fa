using System.Globalization;

namespace SharpDiffusion.Tests.Fixtures;

/// <summary>One tensor of a reference inventory: name, safetensors dtype name, shape.</summary>
internal sealed record InventoryEntry(string Name, string DType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public (string Name, string DType, long[] Shape) ToTuple() => (Name, DType, Shape);
}

/// <summary>
/// Reads the tensor inventories of real models in tests/data/reference (<c>name TAB dtype TAB [d0,d1,...]</c> per line),
/// e.g. <c>sd15_diffusers_unet.tsv</c>, to build realistic test files.
/// </summary>
internal static class ReferenceInventory
{
    public static IReadOnlyList<InventoryEntry> Load(string fileName) => Parse(File.ReadAllLines(TestPaths.ReferenceFile(fileName)), fileName);

    public static IReadOnlyList<InventoryEntry> Parse(IEnumerable<string> lines, string source = "inventory")
    {
        var entries = new List<InventoryEntry>();
        int lineNo = 0;
        foreach (var raw in lines)
        {
            lineNo++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var fields = line.Split('\t');
            if (fields.Length != 3) throw new FormatException($"{source}:{lineNo}: expected name, dtype, shape separated by tabs");
            string shapeText = fields[2].Trim();
            if (!shapeText.StartsWith('[') || !shapeText.EndsWith(']')) throw new FormatException($"{source}:{lineNo}: shape '{shapeText}' is not [..]");
            string inner = shapeText[1..^1];
            long[] shape = inner.Length == 0
                ? []
                : inner.Split(',').Select(d => long.Parse(d.Trim(), CultureInfo.InvariantCulture)).ToArray();
            entries.Add(new InventoryEntry(fields[0], fields[1], shape));
        }
        return entries;
    }

    /// <summary>The entries as tuples for <see cref="SparseSafetensors.Create"/>.</summary>
    public static IEnumerable<(string Name, string DType, long[] Shape)> Tuples(this IEnumerable<InventoryEntry> entries) =>
        entries.Select(e => e.ToTuple());

    /// <summary>The same inventory with every floating-point tensor stored as <paramref name="dtype"/> (e.g. an fp16 export).</summary>
    public static IEnumerable<InventoryEntry> WithFloatDType(this IEnumerable<InventoryEntry> entries, string dtype) =>
        entries.Select(e => e.DType is "F32" or "F16" or "BF16" ? e with { DType = dtype } : e);
}
