namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// The LDM <c>openaimodel.UNetModel</c> hyper-parameters that decide its state-dict keys, named like ComfyUI's unet
/// config. <see cref="TransformerDepth"/> has one entry per level (0 = no attention at that level);
/// heads / head channels do not change any shape but are kept so a config reads like the real one.
/// </summary>
public sealed record LdmUnetConfig
{
    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 4;
    public int ModelChannels { get; init; } = 320;
    public int[] ChannelMult { get; init; } = { 1, 2, 4, 4 };
    public int NumResBlocks { get; init; } = 2;
    public int[] TransformerDepth { get; init; } = { 1, 1, 1, 0 };
    public int TransformerDepthMiddle { get; init; } = 1;
    public int ContextDim { get; init; } = 768;
    public int NumHeads { get; init; } = 8;
    public int NumHeadChannels { get; init; } = -1;
    public bool UseLinearInTransformer { get; init; }
    /// <summary>0 = no label embedding; SDXL 2816 (pooled 1280 + 6 x 256 size features), refiner 2560.</summary>
    public int AdmInChannels { get; init; }

    public int TimeEmbedDim => ModelChannels * 4;

    public static LdmUnetConfig SD15 { get; } = new();

    public static LdmUnetConfig SD2 { get; } = new() { ContextDim = 1024, UseLinearInTransformer = true, NumHeads = -1, NumHeadChannels = 64 };

    public static LdmUnetConfig SDXL { get; } = new()
    {
        ChannelMult = new[] { 1, 2, 4 },
        TransformerDepth = new[] { 0, 2, 10 },
        TransformerDepthMiddle = 10,
        ContextDim = 2048,
        NumHeads = -1,
        NumHeadChannels = 64,
        UseLinearInTransformer = true,
        AdmInChannels = 2816,
    };

    public static LdmUnetConfig SDXLRefiner { get; } = new()
    {
        ModelChannels = 384,
        ChannelMult = new[] { 1, 2, 4, 4 },
        TransformerDepth = new[] { 0, 4, 4, 0 },
        TransformerDepthMiddle = 4,
        ContextDim = 1280,
        NumHeads = -1,
        NumHeadChannels = 64,
        UseLinearInTransformer = true,
        AdmInChannels = 2560,
    };
}
