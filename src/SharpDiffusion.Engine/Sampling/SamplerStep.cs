using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Progress of one sampler step, as k-diffusion's callback sees it: <see cref="X"/> at the start of the step and the
/// denoised prediction of the step's first model call. The tensors are valid only during the callback.
/// </summary>
public sealed record SamplerStep(int Index, int Total, double Sigma, Tensor X, Tensor Denoised);
