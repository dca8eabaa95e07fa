using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>openaimodel.Downsample with a conv: "op" = 3×3 conv, stride 2, padding 1 (called through call() so training hooks run).</summary>
public sealed class UNetDownsample : NamedModule
{
    private readonly Conv2d _op;

    public UNetDownsample(LayerFactory f, int channels) : base("Downsample") => _op = Child("op", f.Conv(channels, channels, 3, stride: 2, padding: 1));

    public Tensor Forward(Tensor x) => _op.call(x);
}

/// <summary>openaimodel.Upsample with a conv: nearest ×2, then "conv" = 3×3 conv, padding 1.</summary>
public sealed class UNetUpsample : NamedModule
{
    private readonly Conv2d _conv;

    public UNetUpsample(LayerFactory f, int channels) : base("Upsample") => _conv = Child("conv", f.Conv(channels, channels, 3, padding: 1));

    public Tensor Forward(Tensor x)
    {
        using var up = NearestUpsample2x(x);
        return _conv.call(up);
    }

    /// <summary>F.interpolate(x, scale_factor=2, mode="nearest").</summary>
    internal static Tensor NearestUpsample2x(Tensor x) =>
        F.interpolate(x, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest);
}
