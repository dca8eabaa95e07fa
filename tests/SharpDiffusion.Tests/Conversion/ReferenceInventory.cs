using System.Globalization;

namespace SharpDiffusion.Tests.Conversion;

/// <summary>One line of a tests/data/reference/*.tsv tensor inventory.</summary>
internal sealed record InventoryEntry(string Name, string DType, long[] Shape)
{
    public string ShapeText => "[" + string.Join(",", Shape) + "]";
}

/// <summary>Reads the reference tensor inventories (<c>name TAB dtype TAB [shape]</c>).</summary>
internal static class ReferenceInventory
{
    public static IReadOnlyList<InventoryEntry> Load(string fileName)
    {
        var entries = new List<InventoryEntry>();
        foreach (var line in File.ReadLines(TestPaths.ReferenceFile(fileName)))
        {
            if (line.Length == 0) continue;
            var cols = line.Split('\t');
            var dims = cols[2].Trim('[', ']');
            long[] shape = dims.Length == 0 ? [] : [.. dims.Split(',').Select(d => long.Parse(d, CultureInfo.InvariantCulture))];
            entries.Add(new InventoryEntry(cols[0], cols[1], shape));
        }
        return entries;
    }

    public static IReadOnlyList<InventoryEntry> SingleFile => Load("sd15_single_file.tsv");

    /// <summary>The three diffusers component inventories as <c>component/key</c> names.</summary>
    public static IReadOnlyList<InventoryEntry> DiffusersFolder =>
    [
        .. Load("sd15_diffusers_unet.tsv").Select(e => e with { Name = "unet/" + e.Name }),
        .. Load("sd15_diffusers_vae.tsv").Select(e => e with { Name = "vae/" + e.Name }),
        .. Load("sd15_diffusers_text_encoder.tsv").Select(e => e with { Name = "text_encoder/" + e.Name }),
    ];

    /// <summary>The twelve DDPM schedule buffers of an LDM checkpoint (no diffusers counterpart: the scheduler computes them).</summary>
    public static readonly string[] DdpmBuffers =
    [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    ];
}
