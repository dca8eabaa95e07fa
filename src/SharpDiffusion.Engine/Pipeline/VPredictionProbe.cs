using SharpDiffusion.Engine.Models;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// A1111's test for SD2 checkpoints that come without a yaml (<c>is_using_v_parameterization_for_sd2</c>): run the
/// U-Net once on a flat 0.5 latent (8x8) at t = 999 with a flat 0.5 context and look at the mean of
/// <c>output - input</c>. At the last timestep the input is almost pure noise, so an eps model predicts about the
/// input (difference near 0) while a v model predicts about <c>-noise</c> (difference near -2x): A1111 calls it v
/// below -1. 768-v SD2 models and 512 eps SD2 models share every tensor shape, so only the weights can tell.
/// </summary>
public static class VPredictionProbe
{
    public const double Threshold = -1.0;

    /// <summary>mean(unet(0.5, 999, 0.5) - 0.5), computed in the U-Net's own precision with float32 inputs.</summary>
    public static double Statistic(UNetModel unet)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var device = unet.parameters().First().device;
        var x = full(new long[] { 1, unet.Config.InChannels, 8, 8 }, 0.5f, device: device);
        var t = tensor(new[] { 999f }, device: device);
        var context = full(new long[] { 1, 2, unet.Config.ContextDim }, 0.5f, device: device);
        var output = unet.Forward(x, t, context);
        return (output - x).mean().to(ScalarType.Float64).item<double>();
    }

    public static Prediction Guess(UNetModel unet) => Statistic(unet) < Threshold ? Prediction.V : Prediction.Eps;
}
