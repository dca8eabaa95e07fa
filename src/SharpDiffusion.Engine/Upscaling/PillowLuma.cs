namespace SharpDiffusion.Engine.Upscaling;

/// <summary>Pillow's <c>convert("L")</c> of one RGB pixel (Convert.c's L24: ITU-R 601 weights in 16-bit fixed point, rounded).</summary>
public static class PillowLuma
{
    public static byte Of(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}
