using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// An optimizer whose state is plain named tensors, so that a checkpoint can store it and a resumed run continues
/// bit for bit. Steps run without autograd; the learning rate is given per step (the schedule lives outside).
/// </summary>
public abstract class TrainingOptimizer : IDisposable
{
    protected TrainingOptimizer(IReadOnlyList<(string Name, Parameter Parameter)> parameters) => Parameters = parameters;

    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }

    /// <summary>Optimizer steps taken so far (torch's per-parameter <c>step</c>; the same for all here).</summary>
    public long StepCount { get; protected set; }

    /// <summary>Applies one update with the gradients in <c>.grad</c> (parameters without a gradient are left alone).</summary>
    public void Step(double learningRate)
    {
        using var noGrad = no_grad();
        StepCount++;
        foreach (var (name, p) in Parameters)
        {
            if (p.grad is not { } grad) continue;
            Update(name, p, grad, learningRate);
        }
    }

    protected abstract void Update(string name, Parameter p, Tensor grad, double learningRate);

    /// <summary>Every state tensor under a stable name (<c>&lt;param&gt;.exp_avg</c>, ...).</summary>
    public abstract IEnumerable<(string Name, Tensor Value)> State();

    /// <summary>Restores <see cref="State"/> and the step count written by a checkpoint.</summary>
    public abstract void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount);

    public void ZeroGrad()
    {
        foreach (var (_, p) in Parameters)
        {
            if (p.grad is { } g) g.zero_();
        }
    }

    public virtual void Dispose() { }

    /// <summary>
    /// A scalar argument for a native call. TorchSharp turns a double into a <see cref="Scalar"/> wrapper whose
    /// finalizer frees the native value; an implicit temporary can be collected while the call still reads it (seen as
    /// "Unknown scalar type" in add_ and as crashes in runs of thousands of steps). Held in a <c>using</c> local or a
    /// field, it stays reachable until the call has returned.
    /// </summary>
    protected static Scalar Arg(double value) => value.ToScalar();

    protected static Tensor StateOrZeros(Dictionary<string, Tensor> states, string key, Tensor like)
    {
        if (!states.TryGetValue(key, out var t)) states[key] = t = zeros_like(like);
        return t;
    }

    protected static void Restore(Dictionary<string, Tensor> states, IReadOnlyDictionary<string, Tensor> saved)
    {
        foreach (var t in states.Values) t.Dispose();
        states.Clear();
        foreach (var (k, v) in saved) states[k] = v.to(ScalarType.Float32).clone();
    }
}

/// <summary>
/// torch.optim.AdamW (decoupled weight decay): <c>p ← p·(1 − lr·wd)</c>; <c>m ← β1·m + (1 − β1)·g</c>;
/// <c>v ← β2·v + (1 − β2)·g²</c>; <c>p ← p − lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)</c>. Defaults are torch's
/// (β 0.9/0.999, ε 1e-8, weight decay 0.01), which kohya uses for AdamW.
/// </summary>
public sealed class AdamWOptimizer(IReadOnlyList<(string Name, Parameter Parameter)> parameters,
    double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.01) : TrainingOptimizer(parameters)
{
    private readonly Dictionary<string, Tensor> _state = new(StringComparer.Ordinal);
    private readonly Scalar _beta2 = Arg(beta2), _oneMinusBeta2 = Arg(1 - beta2), _epsilon = Arg(epsilon), _one = Arg(1);

    // lerp_ takes its weight as a tensor: the 0-dim double tensor the implicit conversion made, kept here.
    private readonly Tensor _oneMinusBeta1 = tensor(1 - beta1);

    protected override void Update(string name, Parameter p, Tensor grad, double lr)
    {
        var m = StateOrZeros(_state, name + ".exp_avg", p);
        var v = StateOrZeros(_state, name + ".exp_avg_sq", p);
        using var decay = Arg(1 - lr * weightDecay);
        p.mul_(decay);
        m.lerp_(grad, _oneMinusBeta1);
        v.mul_(_beta2).addcmul_(grad, grad, _oneMinusBeta2);
        double biasCorrection1 = 1 - Math.Pow(beta1, StepCount);
        double biasCorrection2 = 1 - Math.Pow(beta2, StepCount);
        double stepSize = lr / biasCorrection1;
        using var correction = Arg(Math.Sqrt(biasCorrection2));
        using var negativeStep = Arg(-stepSize);
        using var denom = v.sqrt().div_(correction).add_(_epsilon, _one);
        p.addcdiv_(m, denom, negativeStep);
    }

    public override IEnumerable<(string Name, Tensor Value)> State() => _state.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value));

    public override void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        Restore(_state, state);
        StepCount = stepCount;
    }

    public override void Dispose()
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
        foreach (var s in new[] { _beta2, _oneMinusBeta2, _epsilon, _one }) s.Dispose();
        _oneMinusBeta1.Dispose();
    }
}

/// <summary>
/// Lion (Chen et al. 2023, lucidrains' lion-pytorch, which kohya uses): <c>p ← p·(1 − lr·wd)</c>;
/// <c>p ← p − lr·sign(β1·m + (1 − β1)·g)</c>; <c>m ← β2·m + (1 − β2)·g</c>. Defaults β 0.9/0.99, no weight decay.
/// </summary>
public sealed class LionOptimizer(IReadOnlyList<(string Name, Parameter Parameter)> parameters,
    double beta1 = 0.9, double beta2 = 0.99, double weightDecay = 0.0) : TrainingOptimizer(parameters)
{
    private readonly Dictionary<string, Tensor> _state = new(StringComparer.Ordinal);
    private readonly Scalar _beta1 = Arg(beta1), _oneMinusBeta1 = Arg(1 - beta1), _beta2 = Arg(beta2), _oneMinusBeta2 = Arg(1 - beta2);

    protected override void Update(string name, Parameter p, Tensor grad, double lr)
    {
        var m = StateOrZeros(_state, name + ".exp_avg", p);
        using var decay = Arg(1 - lr * weightDecay);
        using var negativeRate = Arg(-lr);
        p.mul_(decay);
        using var interpolated = m.mul(_beta1).add_(grad, _oneMinusBeta1);
        using var direction = interpolated.sign_();
        p.add_(direction, negativeRate);
        m.mul_(_beta2).add_(grad, _oneMinusBeta2);
    }

    public override IEnumerable<(string Name, Tensor Value)> State() => _state.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value));

    public override void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        Restore(_state, state);
        StepCount = stepCount;
    }

    public override void Dispose()
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
        foreach (var s in new[] { _beta1, _oneMinusBeta1, _beta2, _oneMinusBeta2 }) s.Dispose();
    }
}

/// <summary>torch.nn.utils.clip_grad_norm_: total 2-norm over all gradients; scale by min(1, max/(norm + 1e-6)).</summary>
public static class GradientClipping
{
    /// <returns>The total norm before clipping.</returns>
    public static double ClipByNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        using var noGrad = no_grad();
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return 0;
        var norms = grads.Select(g => g.norm()).ToArray();
        using var stacked = stack(norms);
        foreach (var n in norms) n.Dispose();
        using var total = stacked.norm();
        double totalNorm = total.item<float>();
        // Scalars held in locals: a temporary one can be freed while the native call reads it (see TrainingOptimizer.Arg).
        using var tiny = 1e-6.ToScalar();
        using var one = 1.0.ToScalar();
        using var max = maxNorm.ToScalar();
        using var denominator = total.add(tiny, one);
        using var ratio = denominator.reciprocal().mul_(max);
        using var coefficient = ratio.clamp_max(one);
        foreach (var g in grads) g.mul_(coefficient);
        return totalNorm;
    }
}
