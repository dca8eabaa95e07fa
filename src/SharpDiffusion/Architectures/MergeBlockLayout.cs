namespace SharpDiffusion.Architectures;

/// <summary>
/// The U-Net blocks that block-weighted merges ("MBW") address: <c>input_blocks.0..InputBlocks-1</c>, the middle block
/// and <c>output_blocks.0..OutputBlocks-1</c>. SD1/SD2 and the SDXL refiner have 12 per side, SDXL base 9.
/// </summary>
public sealed record MergeBlockLayout(int InputBlocks, int OutputBlocks)
{
    public static MergeBlockLayout TwelvePerSide { get; } = new(12, 12);
    public static MergeBlockLayout NinePerSide { get; } = new(9, 9);
}
