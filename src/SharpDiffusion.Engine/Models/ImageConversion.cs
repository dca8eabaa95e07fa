using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>Decoded images to 8-bit values, as A1111 does.</summary>
public static class ImageConversion
{
    /// <summary>
    /// floor(255 · clamp((x + 1) / 2, 0, 1)) (truncation, not rounding), as uint8, same layout as the input.
    /// </summary>
    public static Tensor ToUInt8(Tensor image)
    {
        using var scope = NewDisposeScope();
        var values = ToUInt8Values(image);
        return values.to(ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>The same values as float32 (0..255), for comparison with stored float goldens.</summary>
    public static Tensor ToUInt8Values(Tensor image)
    {
        using var scope = NewDisposeScope();
        var x = image.to(ScalarType.Float32).add(1.0).div(2.0).clamp(0.0, 1.0).mul(255.0).floor();
        return x.MoveToOuterDisposeScope();
    }
}
