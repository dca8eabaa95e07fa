using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// A1111 "UniPC" (<c>modules/models/diffusion/uni_pc</c>, Zhao et al. 2023) with A1111's defaults: variant bh1, order 3,
/// time-uniform steps, lower order at the end, data prediction, multistep. It runs its own continuous-time grid
/// <c>linspace(1, 0.001, n + 1)</c> with n = len(T) (the sigma list only gives n) on <c>NoiseScheduleVP('discrete')</c>,
/// and calls the U-Net at the fractional timestep <c>(t - 0.001)·1000</c>. One model call per step.
/// </summary>
public sealed class UniPcSampler : TimestepSampler
{
    private const int Order = 3;

    public override int MinimumSteps => Order;

    public override string Name => "UniPC";

    public override string Alias => "unipc";

    /// <summary>
    /// A1111's <c>CompVisSampler.sample_img2img</c>: <c>t_enc = int(min(strength, 0.999)·steps)</c>, the init latents
    /// noised to timestep T[t_enc], then UniPC over <c>T[:t_enc]</c> — t_enc steps from <c>t = T[t_enc − 1]/1000 + 1/1000</c>
    /// (one DDIM timestep below the noise level; A1111's own comment calls it "likely off by a bit", kept as it is).
    /// The list is σ(T[t_enc]), …, σ(T[0]): its first sigma is the noise level, the second the start time.
    /// </summary>
    public override double[] Img2ImgSigmas(double[] sigmas, Img2ImgPlan plan, double strength) =>
        Img2ImgSchedule.TimestepTail(sigmas, plan, strength, Order, Name);

    /// <summary>The continuous times of an n-step run, float32 <c>linspace(1, 0.001, n + 1)</c>.</summary>
    public static float[] Times(int steps) => DiscreteSchedule.LinspaceFloat32(1f, 0.001f, steps + 1);

    /// <summary>The U-Net timestep of continuous time t: <c>(t - 1/N)·N</c> for N = 1000.</summary>
    public static float ModelTimestep(float t) => (t - 0.001f) * 1000f;

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var guidance = RowGuidance(model);
        var denoiser = guidance.Denoiser as DiscreteDenoiser
            ?? throw new InvalidOperationException("UniPC needs a discrete-schedule denoiser (the U-Net and its alphas_cumprod)");
        int steps = context.Img2Img ? sigmas.Count - 1 : sigmas.Count;
        if (steps < Order) throw new ArgumentException($"UniPC needs at least {Order} steps");
        var vp = new VpSchedule(denoiser.Schedule);
        // img2img: A1111's float32 `timesteps[-1] / 1000 + 1 / 1000` for the last timestep of T[:t_enc].
        var times = context.Img2Img
            ? DiscreteSchedule.LinspaceFloat32(denoiser.Schedule.TimestepOfSigma(sigmas[1]) / 1000f + 0.001f, 0.001f, steps + 1)
            : Times(steps);

        Tensor DataPrediction(Tensor xt, float t)
        {
            using var scope = NewDisposeScope();
            var (eps, _) = GuidedEps(guidance, denoiser, xt, ModelTimestep(t));
            double logAlpha = vp.LogMeanCoefficient(t);
            float alpha = (float)Math.Exp(logAlpha), sigma = (float)Math.Sqrt(1 - Math.Exp(2 * logAlpha));
            return ((xt - eps * sigma) / alpha).MoveToOuterDisposeScope();
        }

        var models = new List<Tensor> { DataPrediction(x, times[0]) };
        var ts = new List<float> { times[0] };
        var current = x;
        int reported = 0;
        try
        {
            for (int step = 1; step <= steps; step++)
            {
                int order = step < Order ? step : Math.Min(Order, steps + 1 - step);
                bool corrector = step < steps;
                using var scope = NewDisposeScope();
                var (next, modelT) = Update(current, models, ts, times[step], order, corrector, vp, DataPrediction);
                if (corrector && modelT is null) modelT = DataPrediction(next, times[step]);
                Report(context, reported++, steps, sigmas[Math.Min(step, sigmas.Count - 1)], next, modelT ?? next);
                if (step < Order)
                {
                    models.Add(modelT!.DetachFromDisposeScope());
                    ts.Add(times[step]);
                }
                else
                {
                    models[0].Dispose();
                    models.RemoveAt(0);
                    ts.RemoveAt(0);
                    ts.Add(times[step]);
                    models.Add(modelT is null ? next.clone().DetachFromDisposeScope() : modelT.DetachFromDisposeScope());
                }
                current = Advance(current, next.DetachFromDisposeScope(), x);
            }
        }
        finally
        {
            foreach (var m in models) m.Dispose();
        }
        return current;
    }

    /// <summary><c>multistep_uni_pc_bh_update</c> (bh1, data prediction): predictor, then the corrector with one model call.</summary>
    private static (Tensor X, Tensor? ModelT) Update(Tensor x, List<Tensor> models, List<float> ts, float t, int order, bool corrector,
        VpSchedule vp, Func<Tensor, float, Tensor> dataPrediction)
    {
        float tPrev0 = ts[^1];
        var modelPrev0 = models[^1];
        double lambdaPrev0 = vp.Lambda(tPrev0), lambdaT = vp.Lambda(t);
        double sigmaPrev0 = vp.Std(tPrev0), sigmaT = vp.Std(t);
        double alphaT = Math.Exp(vp.LogMeanCoefficient(t));
        double h = lambdaT - lambdaPrev0;

        var rks = new List<double>();
        var d1s = new List<Tensor>();
        for (int i = 1; i < order; i++)
        {
            double rk = (vp.Lambda(ts[^(i + 1)]) - lambdaPrev0) / h;
            rks.Add(rk);
            d1s.Add((models[^(i + 1)] - modelPrev0) / (float)rk);
        }
        rks.Add(1.0);

        double hh = -h;
        double hPhi1 = Math.Exp(hh) - 1;
        double hPhiK = hPhi1 / hh - 1;
        double factorial = 1;
        double bh = hh;
        var r = new double[order, order];
        var b = new double[order];
        for (int i = 1; i <= order; i++)
        {
            for (int k = 0; k < order; k++) r[i - 1, k] = Math.Pow(rks[k], i - 1);
            b[i - 1] = hPhiK * factorial / bh;
            factorial *= i + 1;
            hPhiK = hPhiK / hh - 1 / factorial;
        }

        var xBase = x * (float)(sigmaT / sigmaPrev0) - modelPrev0 * (float)(alphaT * hPhi1);
        Tensor xT = xBase;
        if (d1s.Count > 0)
        {
            var rhosP = order == 2 ? new[] { 0.5 } : Solve(r, b, order - 1);
            Tensor predRes = d1s[0] * (float)rhosP[0];
            for (int k = 1; k < d1s.Count; k++) predRes = predRes + d1s[k] * (float)rhosP[k];
            xT = xBase - predRes * (float)(alphaT * bh);
        }
        if (!corrector) return (xT, null);

        var rhosC = order == 1 ? new[] { 0.5 } : Solve(r, b, order);
        var modelT = dataPrediction(xT, t);
        Tensor correction = (modelT - modelPrev0) * (float)rhosC[^1];
        for (int k = 0; k < d1s.Count; k++) correction = correction + d1s[k] * (float)rhosC[k];
        return (xBase - correction * (float)(alphaT * bh), modelT);
    }

    /// <summary>Solves the leading n×n block of <paramref name="a"/> against <paramref name="b"/> (Gaussian elimination, partial pivoting).</summary>
    private static double[] Solve(double[,] a, double[] b, int n)
    {
        var m = new double[n, n + 1];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) m[i, j] = a[i, j];
            m[i, n] = b[i];
        }
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int i = col + 1; i < n; i++) if (Math.Abs(m[i, col]) > Math.Abs(m[pivot, col])) pivot = i;
            for (int j = 0; j <= n; j++) (m[col, j], m[pivot, j]) = (m[pivot, j], m[col, j]);
            for (int i = col + 1; i < n; i++)
            {
                double f = m[i, col] / m[col, col];
                for (int j = col; j <= n; j++) m[i, j] -= f * m[col, j];
            }
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double s = m[i, n];
            for (int j = i + 1; j < n; j++) s -= m[i, j] * x[j];
            x[i] = s / m[i, i];
        }
        return x;
    }

    /// <summary>UniPC's <c>NoiseScheduleVP('discrete')</c>: log alpha(t) piecewise linear through (k/N, ½·log ac[k-1]).</summary>
    private sealed class VpSchedule
    {
        private readonly float[] times;
        private readonly double[] logAlphas;

        public VpSchedule(DiscreteSchedule schedule)
        {
            int n = schedule.Timesteps;
            times = DiscreteSchedule.LinspaceFloat32(0f, 1f, n + 1).Skip(1).ToArray();
            logAlphas = schedule.AlphasCumprod.Select(ac => (double)(0.5f * MathF.Log(ac))).ToArray();
        }

        public double LogMeanCoefficient(double t)
        {
            int k = 0;
            if (t >= times[^1]) k = times.Length - 2;
            else if (t > times[0])
            {
                while (times[k + 1] < t) k++;
            }
            double x0 = times[k], x1 = times[k + 1];
            return logAlphas[k] + (t - x0) * (logAlphas[k + 1] - logAlphas[k]) / (x1 - x0);
        }

        public double Std(double t) => Math.Sqrt(1 - Math.Exp(2 * LogMeanCoefficient(t)));

        public double Lambda(double t)
        {
            double logAlpha = LogMeanCoefficient(t);
            return logAlpha - 0.5 * Math.Log(1 - Math.Exp(2 * logAlpha));
        }
    }
}
