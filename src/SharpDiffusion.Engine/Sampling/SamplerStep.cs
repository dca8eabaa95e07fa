using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Progress of one sampler step, as k-diffusion's callback sees it: <see cref="X"/> at the start of the step and the
/// denoised prediction of the step's first model call. The tensors are valid only during the callback, which runs
/// inside the step's dispose scope: a tensor made there (e.g. a clone) must be <c>DetachFromDisposeScope()</c>-ed
/// to outlive the step.
/// </summary>
public sealed record SamplerStep(int Index, int Total, double Sigma, Tensor X, Tensor Denoised);
