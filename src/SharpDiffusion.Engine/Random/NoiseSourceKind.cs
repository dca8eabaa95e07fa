namespace SharpDiffusion.Engine.Random;

/// <summary>A1111's random number sources (setting "Random number generator source", <c>--rng</c>).</summary>
public enum NoiseSourceKind
{
    /// <summary>"CPU": torch's CPU generator (mt19937 + torch's normal sampling).</summary>
    Cpu,

    /// <summary>"NV": Philox4x32-10, the numbers CUDA <c>torch.randn</c> gives.</summary>
    Nv,
}
