namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Scalar math on float32 values, as k-diffusion does it on 0-d float32 sigma tensors: each result is rounded to
/// float32. SDE samplers need this: their Brownian queries are exact functions of these scalars (README §5.5).
/// </summary>
internal static class Float32Math
{
    public static float Log(double x) => (float)Math.Log((float)x);

    public static float Exp(double x) => (float)Math.Exp((float)x);

    /// <summary>exp(x) - 1 without cancellation, rounded to float32.</summary>
    public static float ExpM1(double x)
    {
        double v = (float)x;
        return (float)(Math.Abs(v) < 1e-5 ? v + v * v / 2 + v * v * v / 6 : Math.Exp(v) - 1.0);
    }

    public static float Sqrt(double x) => MathF.Sqrt((float)x);

    /// <summary>k-diffusion <c>get_ancestral_step</c> on float32 tensors.</summary>
    public static (float Down, float Up) AncestralStep(float sigmaFrom, float sigmaTo, double eta)
    {
        if (eta == 0) return (sigmaTo, 0f);
        float to2 = sigmaTo * sigmaTo, from2 = sigmaFrom * sigmaFrom;
        float up = MathF.Min(sigmaTo, (float)eta * MathF.Sqrt(to2 * (from2 - to2) / from2));
        float down = MathF.Sqrt(to2 - up * up);
        return (down, up);
    }
}
