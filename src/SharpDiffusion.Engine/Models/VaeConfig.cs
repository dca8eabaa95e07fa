using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// Hyper-parameters of an LDM <c>AutoencoderKL</c> (ddconfig + embed_dim) and the latent scale factor
/// (0.18215 for SD1/SD2, 0.13025 for SDXL). Attention inside the levels is given per level
/// (level i runs at resolution / 2^i, as <c>attn_resolutions</c> counts it); the mid blocks always have one.
/// </summary>
public sealed record VaeConfig
{
    public const double Sd1ScaleFactor = 0.18215;
    public const double SdxlScaleFactor = 0.13025;

    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public int Ch { get; init; } = 128;
    public required IReadOnlyList<int> ChMult { get; init; }
    public int NumResBlocks { get; init; } = 2;

    /// <summary>Levels whose ResnetBlocks are each followed by an AttnBlock (none in SD/SDXL VAEs).</summary>
    public required IReadOnlyList<bool> AttentionLevels { get; init; }

    public int ZChannels { get; init; } = 4;
    public bool DoubleZ { get; init; } = true;
    public int EmbedDim { get; init; } = 4;
    public double ScaleFactor { get; init; } = Sd1ScaleFactor;

    public int Levels => ChMult.Count;

    /// <summary>Pixels per latent cell: 2^(levels - 1).</summary>
    public int DownsampleFactor => 1 << (Levels - 1);

    /// <summary>Reads <c>model.params.first_stage_config.params</c> and <c>model.params.scale_factor</c> (upstream default 1.0).</summary>
    public static VaeConfig FromLdmConfig(ConfigTree config)
    {
        var root = LdmConfigFile.ModelRoot(config);
        var p = root.Find("model.params.first_stage_config.params");
        if (!ConfigTree.IsMap(p)) throw new InvalidModelFileException(config.Source, "no model.params.first_stage_config.params section");
        var scale = ConfigTree.Number(root.Find("model.params.scale_factor")) ?? 1.0;
        return FromParams(p, scale, config.Source);
    }

    /// <summary>From the AutoencoderKL arguments: { embed_dim, ddconfig: { ch, ch_mult, ... } }.</summary>
    public static VaeConfig FromParams(object? p, double scaleFactor, string source)
    {
        var dd = ConfigTree.Find(p, "ddconfig");
        int Int(object? node, string key, int? fallback = null)
        {
            var v = ConfigTree.Find(node, key);
            if (v == null && fallback != null) return fallback.Value;
            return (int)(ConfigTree.Integer(v) ?? throw new InvalidModelFileException(source, $"vae config: '{key}' is missing or not an integer"));
        }
        var chMult = ConfigTree.IntegerList(ConfigTree.Find(dd, "ch_mult"))?.Select(x => (int)x).ToArray()
            ?? throw new InvalidModelFileException(source, "vae config: 'ch_mult' is missing");
        int resolution = Int(dd, "resolution", 256);
        var attnRes = (ConfigTree.IntegerList(ConfigTree.Find(dd, "attn_resolutions")) ?? Array.Empty<long>()).ToHashSet();
        var attention = new bool[chMult.Length];
        for (int i = 0; i < chMult.Length; i++) attention[i] = attnRes.Contains(resolution >> i);
        var attnType = ConfigTree.Find(dd, "attn_type") as string;
        if (attnType is not (null or "vanilla" or "vanilla-xformers"))
            throw new InvalidModelFileException(source, $"vae config: attn_type '{attnType}' is not supported");

        return new VaeConfig
        {
            InChannels = Int(dd, "in_channels", 3),
            OutChannels = Int(dd, "out_ch", 3),
            Ch = Int(dd, "ch"),
            ChMult = chMult,
            NumResBlocks = Int(dd, "num_res_blocks"),
            AttentionLevels = attention,
            ZChannels = Int(dd, "z_channels"),
            DoubleZ = ConfigTree.Boolean(ConfigTree.Find(dd, "double_z")) ?? true,
            EmbedDim = Int(p, "embed_dim"),
            ScaleFactor = scaleFactor,
        };
    }

    /// <summary>
    /// Infers the architecture from names/shapes under <paramref name="prefix"/> (e.g. "first_stage_model.").
    /// The scale factor is not stored in weights: pass the family's (<see cref="SdxlScaleFactor"/> for SDXL).
    /// </summary>
    public static VaeConfig DetectFromWeights(IModelFile file, string prefix, double scaleFactor = Sd1ScaleFactor)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
            if (t.Name.StartsWith(prefix, StringComparison.Ordinal)) shapes[t.Name[prefix.Length..]] = t.Shape;
        long[] Shape(string key) => shapes.TryGetValue(key, out var s) ? s
            : throw new InvalidModelFileException(file.Path, $"not an AutoencoderKL: '{prefix}{key}' is missing");

        var convIn = Shape("encoder.conv_in.weight");
        int ch = (int)convIn[0];
        var mult = new List<int>();
        var attention = new List<bool>();
        for (int level = 0; shapes.ContainsKey($"encoder.down.{level}.block.0.conv1.weight"); level++)
        {
            mult.Add((int)(Shape($"encoder.down.{level}.block.0.conv2.weight")[0] / ch));
            attention.Add(shapes.ContainsKey($"encoder.down.{level}.attn.0.q.weight"));
        }
        if (mult.Count == 0) throw new InvalidModelFileException(file.Path, $"not an AutoencoderKL: no encoder blocks under '{prefix}'");
        int resBlocks = 0;
        while (shapes.ContainsKey($"encoder.down.0.block.{resBlocks}.conv1.weight")) resBlocks++;
        int zChannels = (int)Shape("decoder.conv_in.weight")[1];
        return new VaeConfig
        {
            InChannels = (int)convIn[1],
            OutChannels = (int)Shape("decoder.conv_out.weight")[0],
            Ch = ch,
            ChMult = mult,
            NumResBlocks = resBlocks,
            AttentionLevels = attention,
            ZChannels = zChannels,
            DoubleZ = Shape("encoder.conv_out.weight")[0] == 2 * zChannels,
            EmbedDim = (int)Shape("post_quant_conv.weight")[1],
            ScaleFactor = scaleFactor,
        };
    }

    public bool SameArchitecture(VaeConfig other) =>
        InChannels == other.InChannels && OutChannels == other.OutChannels && Ch == other.Ch
        && ChMult.SequenceEqual(other.ChMult) && NumResBlocks == other.NumResBlocks
        && AttentionLevels.SequenceEqual(other.AttentionLevels) && ZChannels == other.ZChannels
        && DoubleZ == other.DoubleZ && EmbedDim == other.EmbedDim;
}
