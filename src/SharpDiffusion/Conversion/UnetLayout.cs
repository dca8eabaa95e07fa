using SharpDiffusion.Architectures;
using System.Globalization;

namespace SharpDiffusion.Conversion;

/// <summary>
/// The block structure of an LDM/diffusers U-Net that decides how block indices correspond
/// (<c>input_blocks.N</c> vs <c>down_blocks.i.resnets.j</c>).
/// </summary>
/// <param name="Levels">Resolution levels (length of <c>channel_mult</c> / <c>block_out_channels</c>).</param>
/// <param name="ResBlocksPerLevel"><c>num_res_blocks</c> (down path; the up path has one more per level).</param>
/// <param name="AttentionLevels">Levels (0 = highest resolution) whose res blocks are followed by a spatial transformer.</param>
/// <param name="MidAttention">Whether the middle block has a transformer between its two res blocks.</param>
public sealed record UnetLayout(int Levels, int ResBlocksPerLevel, IReadOnlySet<int> AttentionLevels, bool MidAttention = true)
{
    /// <summary>SD 1.x and SD 2.x: channel_mult [1,2,4,4], 2 res blocks, attention at the three highest resolutions.</summary>
    public static UnetLayout Sd1 { get; } = new(4, 2, new HashSet<int> { 0, 1, 2 });

    /// <summary>SDXL: channel_mult [1,2,4], 2 res blocks, transformers at levels 1 and 2.</summary>
    public static UnetLayout Sdxl { get; } = new(3, 2, new HashSet<int> { 1, 2 });

    public bool HasAttention(int level) => AttentionLevels.Contains(level);

    /// <summary>Infers the layout from LDM U-Net keys (with or without the <c>model.diffusion_model.</c> prefix).</summary>
    public static UnetLayout FromLdmKeys(IEnumerable<string> keys)
    {
        var input = new Dictionary<int, HashSet<int>>(); // block index -> sub-module indices
        var downsamplers = new SortedSet<int>();
        bool midAttention = false;
        foreach (var full in keys)
        {
            var key = full.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal) ? full[LdmPrefixes.Unet.Length..] : full;
            var p = key.Split('.');
            if (p.Length > 3 && p[0] == "input_blocks" && TryIndex(p[1], out int b) && TryIndex(p[2], out int s))
            {
                if (!input.TryGetValue(b, out var subs)) input[b] = subs = [];
                subs.Add(s);
                if (p[3] == "op") downsamplers.Add(b);
            }
            else if (p.Length > 2 && p[0] == "middle_block" && p[1] == "1" && p[2] is ("proj_in" or "transformer_blocks"))
            {
                midAttention = true;
            }
        }
        if (input.Count == 0) throw new ArgumentException("no input_blocks keys: not an LDM U-Net key set");
        int blocks = input.Keys.Max() + 1;
        // Block N+1 is the first downsampler; a single-level U-Net has none and every block after conv_in is a res block.
        int perLevel = downsamplers.Count > 0 ? downsamplers.Min : blocks;
        int resBlocks = perLevel - 1;
        int levels = blocks / perLevel; // conv_in + L*N res blocks + (L-1) downsamplers = L*(N+1)
        var attention = new HashSet<int>();
        for (int level = 0; level < levels; level++)
        {
            if (input.TryGetValue(1 + level * perLevel, out var subs) && subs.Contains(1)) attention.Add(level);
        }
        return new UnetLayout(levels, resBlocks, attention, midAttention);
    }

    /// <summary>Infers the layout from the keys of a diffusers <c>unet</c> component.</summary>
    public static UnetLayout FromDiffusersKeys(IEnumerable<string> keys)
    {
        int levels = 0, resBlocks = 0;
        var attention = new HashSet<int>();
        bool midAttention = false;
        foreach (var key in keys)
        {
            var p = key.Split('.');
            if (p.Length > 3 && p[0] == "down_blocks" && TryIndex(p[1], out int level))
            {
                levels = Math.Max(levels, level + 1);
                if (p[2] == "resnets" && TryIndex(p[3], out int j)) resBlocks = Math.Max(resBlocks, j + 1);
                if (p[2] == "attentions") attention.Add(level);
            }
            else if (p.Length > 1 && p[0] == "mid_block" && p[1] == "attentions") midAttention = true;
        }
        if (levels == 0) throw new ArgumentException("no down_blocks keys: not a diffusers U-Net key set");
        return new UnetLayout(levels, resBlocks, attention, midAttention);
    }

    internal static bool TryIndex(string text, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    public bool Equals(UnetLayout? other) =>
        other is not null && Levels == other.Levels && ResBlocksPerLevel == other.ResBlocksPerLevel
        && MidAttention == other.MidAttention && AttentionLevels.SetEquals(other.AttentionLevels);

    public override int GetHashCode() => HashCode.Combine(Levels, ResBlocksPerLevel, MidAttention, AttentionLevels.Count);

    public override string ToString() =>
        $"{Levels} levels x {ResBlocksPerLevel} res blocks, attention at [{string.Join(",", AttentionLevels.Order())}]{(MidAttention ? ", mid attention" : "")}";
}
