using static TorchSharp.torch;
using static SharpDiffusion.Engine.Sampling.Float32Math;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion's <c>DPMSolver</c> steps in t = -log σ with eps = (x - D(x, σ))/σ, shared by DPM fast and DPM adaptive.
/// Times are float32 as on k-diffusion's tensors; eps values are cached per step as its <c>eps_cache</c> does.
/// </summary>
internal sealed class DpmSolver
{
    private readonly IGuidedDenoiser model;

    public DpmSolver(IGuidedDenoiser model) => this.model = model;

    public int Evaluations { get; private set; }

    public static float Sigma(float t) => Exp(-t);

    public static float T(float sigma) => -Log(sigma);

    public Tensor Eps(Tensor x, float t)
    {
        Evaluations++;
        float sigma = Sigma(t);
        using var denoised = model.Denoise(x, sigma);
        return (x - denoised) / sigma;
    }

    public static Tensor FirstOrder(Tensor x, float t, float tNext, Tensor eps)
    {
        float h = tNext - t;
        return x - eps * (Sigma(tNext) * ExpM1(h));
    }

    /// <summary>Second-order step; <paramref name="epsR1"/> is set to the midpoint eps it evaluated.</summary>
    public Tensor SecondOrder(Tensor x, float t, float tNext, Tensor eps, float r1, out Tensor epsR1)
    {
        float h = tNext - t;
        float s1 = t + r1 * h;
        var u1 = x - eps * (Sigma(s1) * ExpM1(r1 * h));
        epsR1 = Eps(u1, s1);
        float sigmaNext = Sigma(tNext);
        return x - eps * (sigmaNext * ExpM1(h)) - (epsR1 - eps) * (sigmaNext / (2 * r1) * ExpM1(h));
    }

    /// <summary>Third-order step (r1 = 1/3, r2 = 2/3); reuses <paramref name="epsR1"/> when given.</summary>
    public Tensor ThirdOrder(Tensor x, float t, float tNext, Tensor eps, Tensor? epsR1)
    {
        const float r1 = 1f / 3f, r2 = 2f / 3f;
        float h = tNext - t;
        float s1 = t + r1 * h, s2 = t + r2 * h;
        if (epsR1 is null)
        {
            var u1 = x - eps * (Sigma(s1) * ExpM1(r1 * h));
            epsR1 = Eps(u1, s1);
        }
        float sigmaS2 = Sigma(s2);
        var u2 = x - eps * (sigmaS2 * ExpM1(r2 * h)) - (epsR1 - eps) * (sigmaS2 * (r2 / r1) * (ExpM1(r2 * h) / (r2 * h) - 1f));
        var epsR2 = Eps(u2, s2);
        float sigmaNext = Sigma(tNext);
        return x - eps * (sigmaNext * ExpM1(h)) - (epsR2 - eps) * (sigmaNext / r2 * (ExpM1(h) / h - 1f));
    }

    /// <summary>Ancestral split of the step from t to tNext: the deterministic target time and the noise amount.</summary>
    public static (float TargetT, float NoiseScale) Ancestral(float t, float tNext, float tEnd, double eta)
    {
        if (eta == 0) return (tNext, 0f);
        var (down, _) = AncestralStep(Sigma(t), Sigma(tNext), eta);
        float target = MathF.Min(tEnd, T(down));
        float sigmaNext = Sigma(tNext), sigmaTarget = Sigma(target);
        return (target, MathF.Sqrt(sigmaNext * sigmaNext - sigmaTarget * sigmaTarget));
    }
}

/// <summary>
/// k-diffusion <c>sample_dpm_fast</c> as A1111 calls it: DPM-Solver with n = steps model calls split into 3rd-order
/// steps (then 2nd/1st) on a uniform grid in t between the model's largest and smallest sigma (the sigma list only
/// supplies the starting scale), ancestral with eta 1 (one generator draw per step). Ends at sigma_min, not 0.
/// </summary>
public sealed class DpmFastSampler : Sampler
{
    public override string Name => "DPM fast";

    public override string Alias => "dpm_fast";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var (sigmaMin, sigmaMax) = context.ModelSigmaRange ?? (sigmas.Where(s => s > 0).Min(), sigmas.Max());
        int nfe = sigmas.Count - 1;
        float tStart = DpmSolver.T((float)sigmaMax), tEnd = DpmSolver.T((float)sigmaMin);
        int m = nfe / 3 + 1;
        var ts = DiscreteSchedule.LinspaceFloat32(tStart, tEnd, m + 1);
        var orders = nfe % 3 == 0
            ? Enumerable.Repeat(3, m - 2).Append(2).Append(1).ToList()
            : Enumerable.Repeat(3, m - 1).Append(nfe % 3).ToList();
        var solver = new DpmSolver(model);
        var current = x;
        for (int i = 0; i < orders.Count; i++)
        {
            using var scope = NewDisposeScope();
            float t = ts[i], tNext = ts[i + 1];
            var (target, noiseScale) = DpmSolver.Ancestral(t, tNext, tEnd, context.Eta);
            var eps = solver.Eps(current, t);
            var denoised = current - eps * DpmSolver.Sigma(t);
            Report(context, i, orders.Count, DpmSolver.Sigma(t), current, denoised);
            var next = orders[i] switch
            {
                1 => DpmSolver.FirstOrder(current, t, target, eps),
                2 => solver.SecondOrder(current, t, target, eps, 0.5f, out _),
                _ => solver.ThirdOrder(current, t, target, eps, null),
            };
            next = next + DrawNoise(context, next) * (float)(noiseScale * context.SNoise);
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}

/// <summary>
/// k-diffusion <c>sample_dpm_adaptive</c> as A1111 calls it (eta 1; order 3, rtol 0.05, atol 0.0078, h_init 0.05,
/// PID with icoeff 1 on order 1.5, accept_safety 0.81): each attempt compares a 2nd- and a 3rd-order step (3 model
/// calls), accepts when the step-size factor is ≥ 0.81, and always rescales h. The callback runs after every attempt
/// with the latents after it.
/// </summary>
public sealed class DpmAdaptiveSampler : Sampler
{
    public override string Name => "DPM adaptive";

    public override string Alias => "dpm_adaptive";

    /// <summary>Every attempt of the last run: (t after it, h proposed next, error, accepted).</summary>
    public IReadOnlyList<(double T, double HNext, double Error, bool Accepted)> Attempts => attempts;

    private readonly List<(double, double, double, bool)> attempts = new();

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        attempts.Clear();
        var (sigmaMin, sigmaMax) = context.ModelSigmaRange ?? (sigmas.Where(s => s > 0).Min(), sigmas.Max());
        float tStart = DpmSolver.T((float)sigmaMax), tEnd = DpmSolver.T((float)sigmaMin);
        double h = 0.05;
        var solver = new DpmSolver(model);
        float s = tStart;
        var current = x;
        Tensor xPrev = x;
        int step = 0;
        try
        {
            while (s < tEnd - 1e-5f)
            {
                using var scope = NewDisposeScope();
                var attempt = Try(solver, current, xPrev, s, h, tEnd, context.Eta);
                h *= attempt.Factor;
                if (attempt.Accepted)
                {
                    if (!ReferenceEquals(xPrev, x) && !ReferenceEquals(xPrev, current)) xPrev.Dispose();
                    xPrev = attempt.Low.DetachFromDisposeScope();
                    var next = attempt.High + DrawNoise(context, attempt.High) * (float)(attempt.NoiseScale * context.SNoise);
                    current = Advance(current, next.DetachFromDisposeScope(), x);
                    s = attempt.T;
                }
                attempts.Add((s, h, attempt.Error, attempt.Accepted));
                Report(context, step, Math.Max(step + 1, sigmas.Count - 1), DpmSolver.Sigma(s), current, attempt.Denoised);
                step++;
            }
        }
        finally
        {
            if (!ReferenceEquals(xPrev, x) && !ReferenceEquals(xPrev, current)) xPrev.Dispose();
        }
        return current;
    }

    /// <summary>
    /// One attempt from time <paramref name="s"/> with step size <paramref name="h"/> (the body of k-diffusion's
    /// <c>dpm_solver_adaptive</c> loop before the noise): target <c>t = min(t_end, s + h)</c>, its ancestral split,
    /// the 2nd- and 3rd-order solutions (3 model calls), the error against <paramref name="xPrev"/> (the last accepted
    /// low-order solution) and the controller's factor (<c>h</c> is multiplied by it whether or not it accepts). The
    /// tensors belong to the caller's dispose scope.
    /// </summary>
    internal static AdaptiveAttempt Try(DpmSolver solver, Tensor x, Tensor xPrev, float s, double h, float tEnd, double eta)
    {
        const float rtol = 0.05f, atol = 0.0078f;
        const double acceptSafety = 0.81, eps = 1e-8;
        float t = MathF.Min(tEnd, s + (float)h); // k-diffusion: float32 tensor + Python float
        var (target, noiseScale) = DpmSolver.Ancestral(s, t, tEnd, eta);
        var epsS = solver.Eps(x, s);
        var denoised = x - epsS * DpmSolver.Sigma(s);
        var low = solver.SecondOrder(x, s, target, epsS, 1f / 3f, out var epsR1);
        var high = solver.ThirdOrder(x, s, target, epsS, epsR1);
        var delta = maximum(tensor(atol), maximum(low.abs(), xPrev.abs()) * rtol);
        double error = linalg.norm((low - high) / delta).item<float>() / (float)Math.Sqrt(x.numel());
        // PID controller with pcoeff = dcoeff = 0: factor = limiter((1/error)^(1/order)), order 1.5 when eta != 0.
        double exponent = 1.0 / (eta != 0 ? 1.5 : 3);
        double factor = 1 + Math.Atan(Math.Pow(1 / (error + eps), exponent) - 1);
        return new AdaptiveAttempt(t, target, noiseScale, denoised, low, high, error, factor, factor >= acceptSafety);
    }
}

/// <summary>
/// One DPM adaptive attempt: the time it aims at (<see cref="T"/>) and the ancestral target below it, the noise scale
/// added on acceptance, the denoised prediction at the start, both solutions, the error and the step-size factor.
/// </summary>
internal sealed record AdaptiveAttempt(float T, float Target, float NoiseScale, Tensor Denoised, Tensor Low, Tensor High, double Error, double Factor, bool Accepted);
