using SharpDiffusion.Formats;
using SharpDiffusion.Engine.Weights;
using TorchSharp;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// The model's discrete noise schedule as k-diffusion's <c>DiscreteSchedule</c>/<c>CompVisDenoiser</c> sees it:
/// float32 <c>alphas_cumprod</c>, <c>sigmas = sqrt((1 - ac) / ac)</c> (index = timestep, ascending) and their logs,
/// with the float32 arithmetic of the reference so sigma lists and timesteps come out the same.
/// </summary>
public sealed partial class DiscreteSchedule
{
    private readonly float[] alphasCumprod;
    private readonly float[] sigmas;
    private readonly float[] logSigmas;
    private readonly float[] sgmSigmas;

    /// <param name="alphasCumprod">float32 alphas_cumprod (the checkpoint buffer)</param>
    /// <param name="alphasCumprod64">the same in float64 when known (sgm computes its sigmas from them); else the float32 values are used</param>
    public DiscreteSchedule(IReadOnlyList<float> alphasCumprod, IReadOnlyList<double>? alphasCumprod64 = null)
    {
        if (alphasCumprod64 is not null && alphasCumprod64.Count != alphasCumprod.Count)
            throw new ArgumentException("float64 alphas_cumprod has a different length", nameof(alphasCumprod64));
        if (alphasCumprod.Count < 2) throw new ArgumentException("a schedule needs at least 2 timesteps", nameof(alphasCumprod));
        this.alphasCumprod = alphasCumprod.ToArray();
        sigmas = new float[this.alphasCumprod.Length];
        logSigmas = new float[sigmas.Length];
        for (int i = 0; i < sigmas.Length; i++)
        {
            float ac = this.alphasCumprod[i];
            if (!(ac > 0f && ac < 1f)) throw new ArgumentException($"alphas_cumprod[{i}] = {ac} is not in (0, 1)", nameof(alphasCumprod));
            sigmas[i] = MathF.Sqrt((1f - ac) / ac);
            logSigmas[i] = (float)Math.Log(sigmas[i]);
        }
        for (int i = 1; i < sigmas.Length; i++)
        {
            // Equal neighbours happen with fp16-stored buffers; only a decrease is invalid.
            if (!(sigmas[i] >= sigmas[i - 1])) throw new ArgumentException($"sigmas must not decrease with the timestep (index {i})", nameof(alphasCumprod));
        }
        sgmSigmas = new float[sigmas.Length];
        for (int i = 0; i < sigmas.Length; i++)
        {
            double ac = alphasCumprod64?[i] ?? this.alphasCumprod[i];
            sgmSigmas[i] = MathF.Sqrt((float)((1.0 - ac) / ac));
        }
    }

    /// <summary>
    /// The Stable Diffusion schedule (LDM "scaled_linear"): <c>betas = linspace(sqrt(start), sqrt(end), n)²</c> and
    /// <c>cumprod(1 - betas)</c> in float64 (numpy's linspace), stored float32 as in the checkpoints' DDPM buffers.
    /// </summary>
    public static DiscreteSchedule ScaledLinear(int timesteps = 1000, double linearStart = 0.00085, double linearEnd = 0.012)
    {
        var betas = ScaledLinearBetas(timesteps, linearStart, linearEnd);
        var ac = new float[timesteps];
        var ac64 = new double[timesteps];
        double product = 1.0;
        for (int i = 0; i < timesteps; i++)
        {
            product *= 1.0 - betas[i];
            ac64[i] = product;
            ac[i] = (float)product;
        }
        return new DiscreteSchedule(ac, ac64);
    }

    /// <summary>The float64 scaled-linear betas (numpy <c>linspace(a, b, n) ** 2</c>).</summary>
    public static double[] ScaledLinearBetas(int timesteps = 1000, double linearStart = 0.00085, double linearEnd = 0.012)
    {
        double start = Math.Sqrt(linearStart), stop = Math.Sqrt(linearEnd);
        double step = (stop - start) / (timesteps - 1);
        var betas = new double[timesteps];
        for (int i = 0; i < timesteps; i++)
        {
            double v = i == timesteps - 1 ? stop : start + i * step;
            betas[i] = v * v;
        }
        return betas;
    }

    /// <summary>
    /// The checkpoint's <c>alphas_cumprod</c> buffer if it has one (LDM single files; A1111 samples with the loaded
    /// buffer, so an fp16-stored one is used as stored), else the SD schedule (SDXL and diffusers files carry none).
    /// </summary>
    public static DiscreteSchedule FromCheckpoint(IModelFile file)
    {
        var info = file.Tensors.FirstOrDefault(t => t.Name == "alphas_cumprod");
        if (info is null) return ScaledLinear();
        if (info.Shape.Length != 1) throw new InvalidModelFileException(file.Path, $"alphas_cumprod has shape [{string.Join(", ", info.Shape)}], expected one dimension");
        using var t = TensorReading.Read(file, info, torch.ScalarType.Float32);
        try
        {
            return new DiscreteSchedule(t.data<float>().ToArray());
        }
        catch (ArgumentException e)
        {
            throw new InvalidModelFileException(file.Path, "alphas_cumprod is not a valid noise schedule: " + e.Message);
        }
    }

    public int Timesteps => sigmas.Length;

    public IReadOnlyList<float> AlphasCumprod => alphasCumprod;

    /// <summary>sigma per timestep, ascending.</summary>
    public IReadOnlyList<float> Sigmas => sigmas;

    public IReadOnlyList<float> LogSigmas => logSigmas;

    /// <summary>
    /// sgm's <c>DiscreteDenoiser</c> sigmas: float32 sqrt of float32((1 - ac)/ac) taken from float64 alphas_cumprod.
    /// Near t = 0 they differ from <see cref="Sigmas"/> (whose 1 - ac is taken in float32) by up to ~1e-5 relative.
    /// </summary>
    public IReadOnlyList<float> SgmSigmas => sgmSigmas;

    public double SigmaMin => sigmas[0];

    public double SigmaMax => sigmas[^1];

    /// <summary>
    /// k-diffusion <c>sigma_to_t</c> (quantize=False): interpolation in log sigma between the neighbouring timesteps,
    /// clamped to [0, T-1].
    /// </summary>
    public double SigmaToT(double sigma)
    {
        float l = (float)Math.Log((float)sigma);
        int lo = 0;
        for (int i = 0; i < logSigmas.Length; i++)
        {
            if (l - logSigmas[i] >= 0f) lo = i;
        }
        lo = Math.Min(lo, logSigmas.Length - 2);
        float low = logSigmas[lo], high = logSigmas[lo + 1];
        float w = low == high ? 0f : Math.Clamp((low - l) / (low - high), 0f, 1f);
        return (1f - w) * lo + w * (lo + 1);
    }

    /// <summary>k-diffusion <c>t_to_sigma</c>: <c>exp((1-w)·log_sigmas[floor t] + w·log_sigmas[ceil t])</c>, w = frac(t).</summary>
    public double TToSigma(double t)
    {
        float tf = (float)t;
        if (!(tf >= 0f && tf <= Timesteps - 1)) throw new ArgumentOutOfRangeException(nameof(t), t, $"timestep must be in [0, {Timesteps - 1}]");
        int lo = (int)MathF.Floor(tf), hi = (int)MathF.Ceiling(tf);
        float w = tf - lo;
        float logSigma = (1f - w) * logSigmas[lo] + w * logSigmas[hi];
        return (float)Math.Exp(logSigma);
    }

    /// <summary>
    /// The timestep whose <see cref="Sigmas"/> value (k-diffusion's <c>CompVisDenoiser.sigmas</c>) is nearest, the
    /// distances taken in float32 as torch does on that table (A1111's <c>apply_refiner</c>: <c>argmin |sigmas − σ|</c>).
    /// </summary>
    public int NearestSigmaIndex(float sigma)
    {
        int best = 0;
        float bestDistance = float.PositiveInfinity;
        for (int i = 0; i < sigmas.Length; i++)
        {
            float d = MathF.Abs(sigmas[i] - sigma);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = i;
            }
        }
        return best;
    }

    /// <summary>sgm <c>DiscreteDenoiser</c> quantisation: the timestep whose <see cref="SgmSigmas"/> value is nearest in sigma (not log sigma).</summary>
    public int NearestTimestep(double sigma)
    {
        int best = 0;
        double bestDistance = double.PositiveInfinity;
        for (int i = 0; i < sgmSigmas.Length; i++)
        {
            double d = Math.Abs(sigma - sgmSigmas[i]);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = i;
            }
        }
        return best;
    }

    /// <summary>
    /// The sigmas of an <paramref name="steps"/>-step k-diffusion run of <paramref name="type"/> (A1111 1.10
    /// <c>get_sigmas</c> with the model's sigma range and each scheduler's default parameters), descending, with a
    /// trailing 0 (KL Optimal ends at sigma_min instead). <paramref name="sdxl"/> picks Align Your Steps' SDXL table.
    /// </summary>
    public double[] GetSigmas(int steps, ScheduleType type, bool sdxl = false) => type switch
    {
        ScheduleType.Uniform => NormalSigmas(steps),
        ScheduleType.Karras => KarrasSigmas(steps, SigmaMin, SigmaMax),
        ScheduleType.Exponential => ExponentialSigmas(steps, SigmaMin, SigmaMax),
        ScheduleType.Polyexponential => PolyexponentialSigmas(steps, SigmaMin, SigmaMax),
        ScheduleType.SgmUniform => TimestepRangeSigmas(steps, sgm: true),
        ScheduleType.KlOptimal => KlOptimalSigmas(steps, SigmaMin, SigmaMax),
        ScheduleType.AlignYourSteps => AlignYourStepsSigmas(steps, sdxl),
        ScheduleType.Simple => SimpleSigmas(steps),
        ScheduleType.Normal => TimestepRangeSigmas(steps, sgm: false),
        ScheduleType.Ddim => DdimScheduleSigmas(steps),
        ScheduleType.Beta => BetaSigmas(steps, SigmaMin, SigmaMax),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown schedule type"),
    };

    /// <summary>k-diffusion <c>get_sigmas(n)</c> (A1111 "Uniform", the model default): t = linspace(T-1, 0, n) in float32, sigma(t), then 0.</summary>
    public double[] NormalSigmas(int steps)
    {
        RequirePositive(steps);
        var t = LinspaceFloat32(Timesteps - 1, 0f, steps);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = TToSigma(t[i]);
        return result;
    }

    /// <summary>k-diffusion <c>get_sigmas_karras</c>: <c>(max^(1/rho) + i/(n-1)·(min^(1/rho) - max^(1/rho)))^rho</c>, then 0.</summary>
    public static double[] KarrasSigmas(int steps, double sigmaMin, double sigmaMax, double rho = 7.0)
    {
        RequirePositive(steps);
        var ramp = LinspaceFloat32(0f, 1f, steps);
        float minInvRho = (float)Math.Pow(sigmaMin, 1.0 / rho), maxInvRho = (float)Math.Pow(sigmaMax, 1.0 / rho);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = MathF.Pow(maxInvRho + ramp[i] * (minInvRho - maxInvRho), (float)rho);
        return result;
    }

    /// <summary>k-diffusion <c>get_sigmas_exponential</c>: <c>exp(linspace(log max, log min, n))</c>, then 0.</summary>
    public static double[] ExponentialSigmas(int steps, double sigmaMin, double sigmaMax)
    {
        RequirePositive(steps);
        var logs = LinspaceFloat32((float)Math.Log(sigmaMax), (float)Math.Log(sigmaMin), steps);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = MathF.Exp(logs[i]);
        return result;
    }

    /// <summary>
    /// CompVis DDIM "uniform" timesteps: <c>range(0, T, T / steps) + 1</c>, ascending (visited in reverse), clipped to
    /// T-1 as A1111 does (only matters when T / steps is 1). When <paramref name="steps"/> does not divide T this
    /// gives more than <paramref name="steps"/> timesteps, as upstream.
    /// </summary>
    public int[] DdimTimesteps(int steps)
    {
        RequirePositive(steps);
        int c = Timesteps / steps;
        if (c < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, $"DDIM needs at most {Timesteps} steps");
        var list = new List<int>();
        for (int t = 0; t < Timesteps; t += c) list.Add(Math.Min(t + 1, Timesteps - 1));
        return list.ToArray();
    }

    /// <summary>The timestep whose sigma is exactly <paramref name="sigma"/> (float32), for samplers that run on timesteps.</summary>
    public int TimestepOfSigma(double sigma)
    {
        int index = Array.IndexOf(sigmas, (float)sigma);
        if (index < 0) throw new ArgumentException($"sigma {sigma:R} is not one of the model's timestep sigmas (timestep samplers run on the model's own timesteps)", nameof(sigma));
        return index;
    }

    /// <summary>
    /// DDIM as a sigma list: sigma at each DDIM timestep, descending, then the sigma of timestep 0 (CompVis's
    /// <c>a_prev</c> of the last step is <c>alphas_cumprod[0]</c>, not 1). Use with <see cref="Samplers.DdimSampler"/>.
    /// </summary>
    public double[] DdimSigmas(int steps)
    {
        var timesteps = DdimTimesteps(steps);
        var result = new double[timesteps.Length + 1];
        for (int i = 0; i < timesteps.Length; i++) result[i] = sigmas[timesteps[timesteps.Length - 1 - i]];
        result[^1] = sigmas[0];
        return result;
    }

    /// <summary>
    /// sgm <c>LegacyDDPMDiscretization</c> (SDXL reference sampler): the sgm sigmas at timesteps
    /// <c>int(linspace(T-1, 0, n, endpoint=False))</c>, descending, then 0. Pair with <see cref="TimestepMode.SgmQuantized"/>
    /// and start from <c>noise·sqrt(1 + σ0²)</c>.
    /// </summary>
    public double[] SgmLegacySigmas(int steps)
    {
        RequirePositive(steps);
        var result = new double[steps + 1];
        double last = Timesteps - 1;
        for (int i = 0; i < steps; i++) result[i] = sgmSigmas[(int)(last - i * (last / steps))];
        return result;
    }

    /// <summary>torch.linspace for float32 (step in float32; first half counted from the start, second half from the end).</summary>
    internal static float[] LinspaceFloat32(float start, float end, int steps)
    {
        var values = new float[steps];
        if (steps == 1)
        {
            values[0] = start;
            return values;
        }
        float step = (end - start) / (steps - 1);
        int halfway = steps / 2;
        for (int i = 0; i < steps; i++) values[i] = i < halfway ? start + step * i : end - step * (steps - i - 1);
        return values;
    }

    private static void RequirePositive(int steps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be at least 1");
    }
}
