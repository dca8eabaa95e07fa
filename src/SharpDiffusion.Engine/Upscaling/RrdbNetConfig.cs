namespace SharpDiffusion.Engine.Upscaling;

/// <summary>
/// The hyper-parameters of an ESRGAN / Real-ESRGAN RRDBNet, all read from the weights (no upscaler file stores them).
/// </summary>
/// <param name="InChannels">Image channels (3).</param>
/// <param name="OutChannels">Output image channels (<c>conv_last</c>'s outputs).</param>
/// <param name="Features">num_feat: <c>conv_first</c>'s outputs (64 in the released models).</param>
/// <param name="GrowthChannels">num_grow_ch / gc: each RDB's <c>conv1</c> outputs (32 in the released models).</param>
/// <param name="Blocks">num_block: RRDBs in the trunk (23 in the released models).</param>
/// <param name="Upsamplings">Nearest x2 + conv stages (<c>conv_up1</c>, <c>conv_up2</c>, ...): 2 for BasicSR's RRDBNet.</param>
/// <param name="UnshuffleFactor">Real-ESRGAN x2 / x1: the input is pixel-unshuffled by 2 / 4 first (1 = none).</param>
public sealed record RrdbNetConfig(int InChannels, int OutChannels, int Features, int GrowthChannels, int Blocks, int Upsamplings, int UnshuffleFactor)
{
    /// <summary>Output size / input size: 2^upsamplings / unshuffle factor.</summary>
    public int Scale => (1 << Upsamplings) / UnshuffleFactor;

    /// <summary>The released ESRGAN / RealESRGAN_x4plus size: 23 blocks, 64 features, growth 32, x4.</summary>
    public static RrdbNetConfig FullSizeX4 { get; } = new(3, 3, 64, 32, 23, 2, 1);

    public override string ToString() =>
        $"RRDBNet x{Scale}: {Blocks} blocks, {Features} features, growth {GrowthChannels}" + (UnshuffleFactor > 1 ? $", pixel-unshuffle {UnshuffleFactor}" : "");
}
