using SharpDiffusion.Architectures;
using System.Globalization;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using Spectre.Console;

namespace SharpDiffusion.Cli.Output;

/// <summary>The human view of <c>inspect</c>: one table per kind, the invalid files with their error, a summary line.</summary>
internal static class InspectTable
{
    public static void Render(IAnsiConsole console, IReadOnlyList<ModelReport> reports, bool showHashes)
    {
        var valid = reports.Where(r => r.IsValid).ToList();
        foreach (var group in valid.GroupBy(r => r.Classification!.Kind).OrderBy(g => g.Key))
        {
            var table = new Table { Title = new TableTitle($"{group.Key.WireName()} ({group.Count()})") };
            table.AddColumn("Name");
            table.AddColumn("Base");
            table.AddColumn("Format");
            table.AddColumn("Precision");
            table.AddColumn(new TableColumn("Size").RightAligned());
            table.AddColumn("Details");
            if (showHashes)
            {
                table.AddColumn("Hash");
                table.AddColumn("Legacy");
            }
            foreach (var r in group)
            {
                var c = r.Classification!;
                var cells = new List<string>
                {
                    r.Name,
                    BaseText(c),
                    r.Format?.WireName() ?? "",
                    c.Precision ?? "",
                    FormatSize(r.SizeBytes),
                    Details(c),
                };
                if (showHashes)
                {
                    cells.Add(r.Hashes?.Short ?? (r.Format == ModelFormat.Diffusers ? "(folder)" : ""));
                    cells.Add(r.Hashes?.Legacy ?? "");
                }
                table.AddRow(cells.Select(Markup.Escape).ToArray());
            }
            console.Write(table);
        }

        var invalid = reports.Where(r => !r.IsValid).ToList();
        if (invalid.Count > 0)
        {
            console.WriteLine();
            console.MarkupLine($"[red]Invalid ({invalid.Count}):[/]");
            foreach (var r in invalid) console.WriteLine("  " + r.Error);
        }
        console.WriteLine(Summary(reports));
    }

    public static string Summary(IReadOnlyList<ModelReport> reports)
    {
        var valid = reports.Where(r => r.IsValid).ToList();
        int invalid = reports.Count - valid.Count;
        var kinds = valid.GroupBy(r => r.Classification!.Kind).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.WireName()}");
        string byKind = valid.Count > 0 ? " (" + string.Join(", ", kinds) + ")" : "";
        return $"{valid.Count} model{(valid.Count == 1 ? "" : "s")} read{byKind}, {invalid} invalid, {FormatSize(reports.Sum(r => r.SizeBytes))} total";
    }

    private static string BaseText(ModelClassification c)
    {
        if (c.Base is { } b) return b.WireName();
        return c.CompatibleBases.Count > 0 ? string.Join("/", c.CompatibleBases.Select(x => x.WireName())) + "?" : "";
    }

    /// <summary>The few facts that matter most for each kind.</summary>
    public static string Details(ModelClassification c)
    {
        var parts = new List<string>();
        if (c.Lora is { } lora)
        {
            parts.Add($"{lora.Algorithm} ({lora.Style})");
            if (lora.Ranks.Count > 0) parts.Add("rank " + string.Join("/", lora.Ranks.Distinct()));
            if (lora.Alphas.Count > 0) parts.Add("alpha " + string.Join("/", lora.Alphas.Distinct().Select(a => a.ToString(CultureInfo.InvariantCulture))));
            parts.Add($"{lora.Modules} modules");
            if (lora.Targets.Count > 0) parts.Add(string.Join("+", lora.Targets));
        }
        if (c.Embedding is { } emb)
        {
            parts.Add($"{emb.Vectors} vector{(emb.Vectors == 1 ? "" : "s")} x {string.Join("+", emb.Dims)}");
            if (emb.Token != null) parts.Add($"token {emb.Token}");
        }
        if (c.Hypernetwork is { } hn)
        {
            parts.Add("[" + string.Join(", ", hn.LayerStructure.Select(x => x.ToString(CultureInfo.InvariantCulture))) + "]");
            if (hn.Activation != null) parts.Add(hn.Activation);
            if (hn.LayerNorm) parts.Add("layer norm");
        }
        if (c.Components.Count > 0) parts.Add(string.Join("+", c.Components));
        if (c.Variant != null) parts.Add(c.Variant);
        if (c.InputChannels is { } ch and not 4) parts.Add($"{ch} input channels");
        if (c.HasEma == true) parts.Add("ema");
        if (c.TriggerWords.Count > 0) parts.Add("triggers: " + string.Join(", ", c.TriggerWords.Take(3)));
        if (parts.Count == 0) parts.Add($"{c.Tensors} tensors, {FormatCount(c.Parameters)} parameters");
        return string.Join(", ", parts);
    }

    public static string FormatSize(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString(value < 10 ? "0.00" : value < 100 ? "0.0" : "0", CultureInfo.InvariantCulture) + " " + units[unit];
    }

    private static string FormatCount(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (n / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (n / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };
}
