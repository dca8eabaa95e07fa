namespace SharpDiffusion.Architectures;

/// <summary>What the denoiser is trained to predict.</summary>
public enum PredictionType
{
    /// <summary>The noise (epsilon): SD1, SD2 512-base, SDXL.</summary>
    Epsilon,

    /// <summary>The velocity v = alpha * eps - sigma * x0: SD2 768-v and other v-prediction models.</summary>
    V,

    /// <summary>Rectified flow (SD3, Flux): not run by the engine yet.</summary>
    Flow,
}
