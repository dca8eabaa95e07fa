using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// Hyper-parameters of an LDM/sgm <c>openaimodel.UNetModel</c> with spatial transformers (SD1, SD2, SDXL).
/// Attention is described per level as ComfyUI does: level i has attention when 2^i is in
/// <c>attention_resolutions</c>, with <see cref="TransformerDepth"/>[i] transformer blocks (0 = none).
/// </summary>
public sealed record UNetConfig
{
    /// <summary>Head layout used by <see cref="DetectFromWeights"/> when not given: weights cannot tell it.</summary>
    public const int DefaultNumHeadsLegacyProj = 8;

    /// <summary>Head width used by <see cref="DetectFromWeights"/> for linear proj_in models (SD2, SDXL).</summary>
    public const int DefaultHeadChannelsLinearProj = 64;

    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    public int ModelChannels { get; init; } = 320;
    public required IReadOnlyList<int> ChannelMult { get; init; }

    /// <summary>ResBlocks per level (input side; the output side has one more).</summary>
    public required IReadOnlyList<int> NumResBlocks { get; init; }

    /// <summary>SpatialTransformer depth per level; 0 = no attention at that level.</summary>
    public required IReadOnlyList<int> TransformerDepth { get; init; }

    /// <summary>Depth of the middle block's SpatialTransformer; 0 = none.</summary>
    public int TransformerDepthMiddle { get; init; } = 1;

    public int ContextDim { get; init; } = 768;

    /// <summary>Fixed head count (SD1); -1 when <see cref="NumHeadChannels"/> is used.</summary>
    public int NumHeads { get; init; } = 8;

    /// <summary>Fixed head width (SD2, SDXL); -1 when <see cref="NumHeads"/> is used.</summary>
    public int NumHeadChannels { get; init; } = -1;

    /// <summary>proj_in/proj_out are Linear on the (b, h·w, c) sequence rather than 1×1 convolutions.</summary>
    public bool UseLinearInTransformer { get; init; }

    /// <summary>Input width of the "sequential" label embedding (SDXL: 2816); null when there is none.</summary>
    public int? AdmInChannels { get; init; }

    /// <summary>The LDM "legacy" flag; it only changes head sizes for non-spatial attention, which is not supported.</summary>
    public bool Legacy { get; init; }

    public int TimeEmbedDim => ModelChannels * 4;

    public int Levels => ChannelMult.Count;

    /// <summary>(heads, head width) for a transformer of <paramref name="channels"/> channels, as openaimodel computes it.</summary>
    public (int Heads, int DimHead) HeadsFor(int channels)
    {
        if (NumHeadChannels > 0)
        {
            if (channels % NumHeadChannels != 0) throw new ArgumentException($"{channels} channels are not a multiple of num_head_channels {NumHeadChannels}");
            return (channels / NumHeadChannels, NumHeadChannels);
        }
        if (NumHeads <= 0 || channels % NumHeads != 0) throw new ArgumentException($"{channels} channels cannot be split into {NumHeads} heads");
        return (NumHeads, channels / NumHeads);
    }

    /// <summary>The same architecture with a different head layout (e.g. from a config, onto detected weights).</summary>
    public UNetConfig WithHeads(int numHeads, int numHeadChannels) => this with { NumHeads = numHeads, NumHeadChannels = numHeadChannels };

    /// <summary>
    /// Reads <c>model.params.unet_config.params</c> (LDM) or <c>model.params.network_config.params</c> (sgm) of a
    /// yaml/json config tree (see <see cref="LdmConfigFile"/>).
    /// </summary>
    public static UNetConfig FromLdmConfig(ConfigTree config)
    {
        var root = LdmConfigFile.ModelRoot(config);
        var p = root.Find("model.params.unet_config.params") ?? root.Find("model.params.network_config.params");
        if (!ConfigTree.IsMap(p)) throw new InvalidModelFileException(config.Source, "no model.params.unet_config.params (or network_config) section");
        return FromParams(p, config.Source);
    }

    /// <summary>Builds the config from the UNetModel constructor arguments (the "params" map).</summary>
    public static UNetConfig FromParams(object? p, string source)
    {
        int Int(string key, int? fallback = null)
        {
            var v = ConfigTree.Find(p, key);
            if (v == null && fallback != null) return fallback.Value;
            return (int)(ConfigTree.Integer(v) ?? throw new InvalidModelFileException(source, $"unet config: '{key}' is missing or not an integer"));
        }
        IReadOnlyList<int> IntList(string key)
        {
            var list = ConfigTree.IntegerList(ConfigTree.Find(p, key))
                ?? throw new InvalidModelFileException(source, $"unet config: '{key}' is missing or not a list of integers");
            return list.Select(x => (int)x).ToArray();
        }
        bool Bool(string key, bool fallback) => ConfigTree.Boolean(ConfigTree.Find(p, key)) ?? fallback;

        if (ConfigTree.Find(p, "use_spatial_transformer") is { } ust && ConfigTree.Boolean(ust) == false)
            throw new InvalidModelFileException(source, "unet config: only use_spatial_transformer models (SD1/SD2/SDXL) are supported");
        if (Bool("use_scale_shift_norm", false) || Bool("resblock_updown", false))
            throw new InvalidModelFileException(source, "unet config: use_scale_shift_norm/resblock_updown are not supported");
        if (Int("dims", 2) != 2) throw new InvalidModelFileException(source, "unet config: only 2-D models are supported");
        if (ConfigTree.Find(p, "num_attention_blocks") != null)
            throw new InvalidModelFileException(source, "unet config: num_attention_blocks is not supported");

        var channelMult = IntList("channel_mult");
        int levels = channelMult.Count;
        var resBlocks = IntList("num_res_blocks");
        if (resBlocks.Count == 1) resBlocks = Enumerable.Repeat(resBlocks[0], levels).ToArray();
        if (resBlocks.Count != levels) throw new InvalidModelFileException(source, "unet config: num_res_blocks does not match channel_mult");

        var attentionResolutions = IntList("attention_resolutions").ToHashSet();
        var depthNode = ConfigTree.Find(p, "transformer_depth");
        var depthList = depthNode == null ? new[] { 1 } : ConfigTree.IntegerList(depthNode)?.Select(x => (int)x).ToArray()
            ?? throw new InvalidModelFileException(source, "unet config: transformer_depth is not an integer or a list");
        bool depthPerLevel = depthNode is IReadOnlyList<object?>;
        if (depthPerLevel && depthList.Length != levels) throw new InvalidModelFileException(source, "unet config: transformer_depth does not match channel_mult");
        var depth = new int[levels];
        for (int i = 0; i < levels; i++) depth[i] = attentionResolutions.Contains(1 << i) ? (depthPerLevel ? depthList[i] : depthList[0]) : 0;
        // LDM uses the single depth in the middle; sgm defaults transformer_depth_middle to transformer_depth[-1].
        int middle = Int("transformer_depth_middle", depthPerLevel ? depthList[^1] : depthList[0]);

        int? adm = null;
        var numClasses = ConfigTree.Find(p, "num_classes");
        if (numClasses is string s && s == "sequential") adm = Int("adm_in_channels");
        else if (numClasses != null) throw new InvalidModelFileException(source, $"unet config: num_classes '{numClasses}' is not supported (only \"sequential\")");

        var contextDim = ConfigTree.Find(p, "context_dim");
        int context = contextDim is IReadOnlyList<object?> cl && cl.Count > 0
            ? (int)(ConfigTree.Integer(cl[0]) ?? 0)
            : Int("context_dim");

        return new UNetConfig
        {
            InChannels = Int("in_channels"),
            OutChannels = Int("out_channels"),
            ModelChannels = Int("model_channels"),
            ChannelMult = channelMult,
            NumResBlocks = resBlocks,
            TransformerDepth = depth,
            TransformerDepthMiddle = middle,
            ContextDim = context,
            NumHeads = Int("num_heads", -1),
            NumHeadChannels = Int("num_head_channels", -1),
            UseLinearInTransformer = Bool("use_linear_in_transformer", false),
            AdmInChannels = adm,
            Legacy = Bool("legacy", true),
        };
    }

    /// <summary>
    /// Infers the architecture from key names and shapes under <paramref name="prefix"/> (e.g. "model.diffusion_model."),
    /// as ComfyUI's model_detection does. Heads are not visible in weights: unless given, linear-proj models
    /// (SD2, SDXL) get <see cref="DefaultHeadChannelsLinearProj"/> channels per head and conv-proj models (SD1)
    /// <see cref="DefaultNumHeadsLegacyProj"/> heads.
    /// </summary>
    public static UNetConfig DetectFromWeights(IModelFile file, string prefix, int? numHeads = null, int? numHeadChannels = null)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
            if (t.Name.StartsWith(prefix, StringComparison.Ordinal)) shapes[t.Name[prefix.Length..]] = t.Shape;

        long[] Shape(string key) => shapes.TryGetValue(key, out var s) ? s
            : throw new InvalidModelFileException(file.Path, $"not a UNet: '{prefix}{key}' is missing");

        var convIn = Shape("input_blocks.0.0.weight");
        int modelChannels = (int)convIn[0];
        int inChannels = (int)convIn[1];
        int outChannels = (int)Shape("out.2.weight")[0];

        int? TransformerDepthAt(string blockPrefix)
        {
            if (!shapes.ContainsKey(blockPrefix + "norm.weight") || !shapes.ContainsKey(blockPrefix + "proj_in.weight")) return null;
            int n = 0;
            while (shapes.ContainsKey($"{blockPrefix}transformer_blocks.{n}.norm1.weight")) n++;
            return n;
        }

        var channelMult = new List<int>();
        var resBlocks = new List<int>();
        var depth = new List<int>();
        int levelBlocks = 0, levelMult = 0, levelDepth = 0;
        bool useLinear = false;
        int context = 0;
        for (int i = 1; ; i++)
        {
            var block = $"input_blocks.{i}.";
            if (shapes.ContainsKey(block + "0.op.weight"))
            {
                channelMult.Add(levelMult); resBlocks.Add(levelBlocks); depth.Add(levelDepth);
                levelBlocks = 0; levelMult = 0; levelDepth = 0;
                continue;
            }
            if (!shapes.ContainsKey(block + "0.in_layers.0.weight")) break;
            levelBlocks++;
            levelMult = (int)(Shape(block + "0.out_layers.3.weight")[0] / modelChannels);
            var d = TransformerDepthAt(block + "1.");
            if (d is { } found)
            {
                if (levelDepth != 0 && levelDepth != found)
                    throw new InvalidModelFileException(file.Path, $"unsupported UNet: transformer depth changes inside level {channelMult.Count}");
                levelDepth = found;
                useLinear = Shape(block + "1.proj_in.weight").Length == 2;
                context = (int)Shape(block + "1.transformer_blocks.0.attn2.to_k.weight")[1];
            }
        }
        if (levelMult > 0) { channelMult.Add(levelMult); resBlocks.Add(levelBlocks); depth.Add(levelDepth); }
        if (channelMult.Count == 0) throw new InvalidModelFileException(file.Path, $"not a UNet: no input blocks under '{prefix}'");

        int middle = TransformerDepthAt("middle_block.1.") ?? 0;
        if (middle > 0)
        {
            useLinear = Shape("middle_block.1.proj_in.weight").Length == 2;
            context = (int)Shape("middle_block.1.transformer_blocks.0.attn2.to_k.weight")[1];
        }

        int? adm = shapes.TryGetValue("label_emb.0.0.weight", out var label) ? (int)label[1] : null;

        int heads, headChannels;
        if (numHeads != null || numHeadChannels != null) { heads = numHeads ?? -1; headChannels = numHeadChannels ?? -1; }
        else if (useLinear) { heads = -1; headChannels = DefaultHeadChannelsLinearProj; }
        else { heads = DefaultNumHeadsLegacyProj; headChannels = -1; }

        return new UNetConfig
        {
            InChannels = inChannels,
            OutChannels = outChannels,
            ModelChannels = modelChannels,
            ChannelMult = channelMult,
            NumResBlocks = resBlocks,
            TransformerDepth = depth,
            TransformerDepthMiddle = middle,
            ContextDim = context,
            NumHeads = heads,
            NumHeadChannels = headChannels,
            UseLinearInTransformer = useLinear,
            AdmInChannels = adm,
            Legacy = false,
        };
    }

    /// <summary>Structural equality (the lists compare by content).</summary>
    public bool SameArchitecture(UNetConfig other) =>
        InChannels == other.InChannels && OutChannels == other.OutChannels && ModelChannels == other.ModelChannels
        && ChannelMult.SequenceEqual(other.ChannelMult) && NumResBlocks.SequenceEqual(other.NumResBlocks)
        && TransformerDepth.SequenceEqual(other.TransformerDepth) && TransformerDepthMiddle == other.TransformerDepthMiddle
        && ContextDim == other.ContextDim && UseLinearInTransformer == other.UseLinearInTransformer
        && AdmInChannels == other.AdmInChannels;
}
