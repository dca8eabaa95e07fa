using SharpDiffusion.Engine.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// AdamW, Lion and clip_grad_norm_ against their published update rules re-computed here in double precision
/// (torch.optim.AdamW single-tensor path; lucidrains' lion-pytorch; torch.nn.utils.clip_grad_norm_).
/// </summary>
public class OptimizerTests
{
    private static readonly double[] Start = [0.5, -1.25, 2.0, 0.0, -0.3, 0.75];
    private static readonly double[][] Grads = [[0.1, -0.2, 0.3, 0.05, -0.4, 0.0], [-0.3, 0.1, 0.2, -0.05, 0.2, 0.6], [0.2, 0.2, -0.1, 0.3, 0.0, -0.1]];
    private static readonly double[] Rates = [1e-2, 5e-3, 2e-2];

    private static (Parameter P, List<(string, Parameter)> List) Param()
    {
        var p = new Parameter(tensor(Start.Select(x => (float)x).ToArray()), requires_grad: true);
        return (p, [("w", p)]);
    }

    private static void SetGrad(Parameter p, double[] g)
    {
        using var source = tensor(g.Select(x => (float)x).ToArray());
        using var sum = (p * 0).sum(); // creates .grad of the right shape
        sum.backward();
        using (no_grad()) p.grad!.copy_(source);
    }

    private static void AssertClose(double[] expected, Tensor actual)
    {
        var a = actual.detach().data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - a[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"[{i}] {a[i]} vs {expected[i]}");
    }

    [Fact]
    public void AdamWFollowsTorchsDecoupledWeightDecayUpdate()
    {
        var (p, list) = Param();
        using var optimizer = new AdamWOptimizer(list, weightDecay: 0.1);
        double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
        var w = (double[])Start.Clone();
        var m = new double[w.Length];
        var v = new double[w.Length];
        for (int s = 0; s < Grads.Length; s++)
        {
            SetGrad(p, Grads[s]);
            optimizer.Step(Rates[s]);
            int t = s + 1;
            for (int i = 0; i < w.Length; i++)
            {
                double g = Grads[s][i];
                w[i] *= 1 - Rates[s] * wd;
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double mHat = m[i] / (1 - Math.Pow(b1, t)), vHat = v[i] / (1 - Math.Pow(b2, t));
                w[i] -= Rates[s] * mHat / (Math.Sqrt(vHat) + eps);
            }
            AssertClose(w, p);
        }
        Assert.Equal(3, optimizer.StepCount);
        Assert.Equal(["w.exp_avg", "w.exp_avg_sq"], optimizer.State().Select(s => s.Name));
    }

    [Fact]
    public void LionFollowsTheSignUpdate()
    {
        var (p, list) = Param();
        using var optimizer = new LionOptimizer(list, weightDecay: 0.5);
        double b1 = 0.9, b2 = 0.99, wd = 0.5;
        var w = (double[])Start.Clone();
        var m = new double[w.Length];
        for (int s = 0; s < Grads.Length; s++)
        {
            SetGrad(p, Grads[s]);
            optimizer.Step(Rates[s]);
            for (int i = 0; i < w.Length; i++)
            {
                double g = Grads[s][i];
                w[i] *= 1 - Rates[s] * wd;
                w[i] -= Rates[s] * Math.Sign(b1 * m[i] + (1 - b1) * g);
                m[i] = b2 * m[i] + (1 - b2) * g;
            }
            AssertClose(w, p);
        }
    }

    [Fact]
    public void RestoredStateContinuesIdentically()
    {
        var (p1, l1) = Param();
        var (p2, l2) = Param();
        using var a = new AdamWOptimizer(l1);
        using var b = new AdamWOptimizer(l2);
        SetGrad(p1, Grads[0]);
        a.Step(1e-2);
        using (no_grad()) p2.copy_(p1);
        b.LoadState(a.State().ToDictionary(s => s.Name, s => s.Value), a.StepCount);
        SetGrad(p1, Grads[1]);
        SetGrad(p2, Grads[1]);
        a.Step(1e-2);
        b.Step(1e-2);
        Assert.True(p1.eq(p2).all().item<bool>());
    }

    [Fact]
    public void ClipGradNormScalesByMaxOverTotalNorm()
    {
        var p = new Parameter(zeros(2), requires_grad: true);
        var q = new Parameter(zeros(1), requires_grad: true);
        SetGrad(p, [3.0, 0.0]);
        SetGrad(q, [4.0]);
        double norm = GradientClipping.ClipByNorm([p, q], 1.0);
        Assert.Equal(5.0, norm, 5);
        double coefficient = 1.0 / (5.0 + 1e-6);
        AssertClose([3 * coefficient, 0], p.grad!);
        AssertClose([4 * coefficient], q.grad!);
        // Below the limit nothing changes.
        GradientClipping.ClipByNorm([p, q], 10.0);
        AssertClose([3 * coefficient, 0], p.grad!);
    }
}
