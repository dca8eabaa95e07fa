namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// Independent float64 implementations of the k-diffusion / DDIM step formulas (README §4 and k-diffusion
/// <c>sampling.py</c>) on flat arrays, for checking the engine's samplers with an analytic denoiser.
/// </summary>
internal static class ReferenceSamplers
{
    public delegate double[] Denoiser(double[] x, double sigma);

    public static double[] Run(string name, Denoiser model, double[] x0, double[] sigmas, Func<double[]> noise, List<double[]> stepXs)
    {
        var x = (double[])x0.Clone();
        var slopes = new List<double[]>();
        double[]? oldDenoised = null;
        for (int i = 0; i < sigmas.Length - 1; i++)
        {
            double s = sigmas[i], sn = sigmas[i + 1];
            stepXs.Add((double[])x.Clone());
            var d0 = model(x, s);
            var d = Slope(x, d0, s);
            switch (name)
            {
                case "euler":
                    x = Axpy(x, d, sn - s);
                    break;
                case "euler_ancestral":
                {
                    var (down, up) = Ancestral(s, sn);
                    x = Axpy(x, d, down - s);
                    if (sn > 0) x = Axpy(x, noise(), up);
                    break;
                }
                case "heun":
                    if (sn == 0)
                    {
                        x = Axpy(x, d, sn - s);
                    }
                    else
                    {
                        var x2 = Axpy(x, d, sn - s);
                        var d2 = Slope(x2, model(x2, sn), sn);
                        x = Axpy(x, Combine(d, 0.5, d2, 0.5), sn - s);
                    }
                    break;
                case "dpm_2":
                    if (sn == 0)
                    {
                        x = Axpy(x, d, sn - s);
                    }
                    else
                    {
                        double mid = Math.Exp((Math.Log(s) + Math.Log(sn)) / 2);
                        var x2 = Axpy(x, d, mid - s);
                        x = Axpy(x, Slope(x2, model(x2, mid), mid), sn - s);
                    }
                    break;
                case "dpm_2_ancestral":
                {
                    var (down, up) = Ancestral(s, sn);
                    if (down == 0)
                    {
                        x = Axpy(x, d, down - s);
                    }
                    else
                    {
                        double mid = Math.Exp((Math.Log(s) + Math.Log(down)) / 2);
                        var x2 = Axpy(x, d, mid - s);
                        x = Axpy(x, Slope(x2, model(x2, mid), mid), down - s);
                        x = Axpy(x, noise(), up);
                    }
                    break;
                }
                case "lms":
                {
                    slopes.Add(d);
                    if (slopes.Count > 4) slopes.RemoveAt(0);
                    int order = Math.Min(i + 1, 4);
                    for (int j = 0; j < order; j++) x = Axpy(x, slopes[slopes.Count - 1 - j], LagrangeIntegral(sigmas, i, j, order));
                    break;
                }
                case "dpmpp_2m":
                {
                    if (sn == 0)
                    {
                        x = d0;
                    }
                    else
                    {
                        double h = Math.Log(s) - Math.Log(sn);
                        var dd = d0;
                        if (oldDenoised is not null)
                        {
                            double r = (Math.Log(sigmas[i - 1]) - Math.Log(s)) / h;
                            dd = Combine(d0, 1 + 1 / (2 * r), oldDenoised, -1 / (2 * r));
                        }
                        x = Combine(x, sn / s, dd, 1 - Math.Exp(-h));
                    }
                    oldDenoised = d0;
                    break;
                }
                case "dpmpp_2s_ancestral":
                {
                    var (down, up) = Ancestral(s, sn);
                    if (down == 0)
                    {
                        x = Axpy(x, d, down - s);
                    }
                    else
                    {
                        double h = Math.Log(s) - Math.Log(down);
                        double sMid = Math.Exp(Math.Log(s) - h / 2);
                        var x2 = Combine(x, sMid / s, d0, 1 - Math.Exp(-h / 2));
                        x = Combine(x, down / s, model(x2, sMid), 1 - Math.Exp(-h));
                    }
                    if (sn > 0) x = Axpy(x, noise(), up);
                    break;
                }
                case "ddim":
                {
                    // x is variance preserving here: D works on x / sqrt(a).
                    double a = 1 / (1 + s * s), aPrev = 1 / (1 + sn * sn);
                    var predX0 = model(x.Select(v => v / Math.Sqrt(a)).ToArray(), s);
                    stepXs[^1] = (double[])x.Clone();
                    var eps = Combine(x, 1 / Math.Sqrt(1 - a), predX0, -Math.Sqrt(a) / Math.Sqrt(1 - a));
                    x = Combine(predX0, Math.Sqrt(aPrev), eps, Math.Sqrt(1 - aPrev));
                    break;
                }
                default:
                    throw new ArgumentException("no reference for " + name);
            }
        }
        return x;
    }

    private static (double Down, double Up) Ancestral(double from, double to)
    {
        double up = Math.Min(to, Math.Sqrt(to * to * (from * from - to * to) / (from * from)));
        return (Math.Sqrt(to * to - up * up), up);
    }

    /// <summary>∫_{t_i}^{t_{i+1}} of the Lagrange basis polynomial of node t_{i-j}, by exact polynomial integration.</summary>
    public static double LagrangeIntegral(double[] t, int i, int j, int order)
    {
        var poly = new double[] { 1.0 };
        for (int k = 0; k < order; k++)
        {
            if (k == j) continue;
            double denom = t[i - j] - t[i - k];
            var next = new double[poly.Length + 1];
            for (int p = 0; p < poly.Length; p++)
            {
                next[p + 1] += poly[p] / denom;
                next[p] -= poly[p] * t[i - k] / denom;
            }
            poly = next;
        }
        double F(double v)
        {
            double sum = 0;
            for (int p = 0; p < poly.Length; p++) sum += poly[p] * Math.Pow(v, p + 1) / (p + 1);
            return sum;
        }
        return F(t[i + 1]) - F(t[i]);
    }

    private static double[] Slope(double[] x, double[] denoised, double sigma) => x.Select((v, k) => (v - denoised[k]) / sigma).ToArray();

    private static double[] Axpy(double[] x, double[] d, double a) => x.Select((v, k) => v + a * d[k]).ToArray();

    private static double[] Combine(double[] a, double wa, double[] b, double wb) => a.Select((v, k) => wa * v + wb * b[k]).ToArray();
}
