using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>The per-step loss of kohya's train_network.py, split where the goldens split it.</summary>
public sealed record DiffusionLossTerms(Tensor MsePerSample, Tensor? SnrWeight, Tensor LossPerSample, Tensor Loss) : IDisposable
{
    public void Dispose()
    {
        MsePerSample.Dispose();
        SnrWeight?.Dispose();
        LossPerSample.Dispose();
        Loss.Dispose();
    }
}

/// <summary>
/// kohya's noise and loss arithmetic (library/custom_train_functions.py, train_network.py): noise offset, targets,
/// l2 loss averaged per sample over C,H,W, optional min-SNR-γ weights, mean over the batch.
/// </summary>
public static class DiffusionLoss
{
    /// <summary>
    /// <c>apply_noise_offset</c> without adaptive scale: <c>noise + strength · draw</c>, the draw being one
    /// <c>randn(B, C, 1, 1)</c> value per sample and channel (a constant shift of each channel).
    /// </summary>
    public static Tensor ApplyNoiseOffset(Tensor noise, Tensor offsetDraw, double strength) => noise + offsetDraw.mul(strength);

    /// <summary>The training target: the noise for eps models, diffusers' velocity for v models.</summary>
    public static Tensor Target(KohyaNoiseSchedule schedule, Tensor x0, Tensor noise, Tensor timesteps, bool vPrediction) =>
        vPrediction ? schedule.Velocity(x0, noise, timesteps) : noise.alias();

    /// <summary>
    /// <c>mse(pred, target, reduction none).mean([1, 2, 3])</c>, times the min-SNR weights when <paramref name="minSnrGamma"/>
    /// is given, then the batch mean (the value that is backpropagated).
    /// </summary>
    public static DiffusionLossTerms Compute(Tensor prediction, Tensor target, Tensor timesteps, KohyaNoiseSchedule schedule,
        double? minSnrGamma, bool vPrediction)
    {
        using var diff = prediction.to(ScalarType.Float32) - target.to(ScalarType.Float32);
        using var squared = diff.square();
        var mse = squared.mean(new long[] { 1, 2, 3 });
        Tensor? weight = minSnrGamma is { } gamma ? schedule.MinSnrWeight(timesteps, gamma, vPrediction) : null;
        var perSample = weight is null ? mse.alias() : mse * weight;
        var loss = perSample.mean();
        return new DiffusionLossTerms(mse, weight, perSample, loss);
    }
}
