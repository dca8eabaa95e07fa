namespace SharpDiffusion.Engine.Pipeline;

/// <summary>Where a checkpoint's prediction type came from.</summary>
public enum PredictionSource
{
    /// <summary>Given by the caller (<c>--prediction</c>).</summary>
    Option,

    /// <summary>The config's <c>parameterization</c>.</summary>
    Config,

    /// <summary>SD2 without a config: A1111's U-Net probe (<see cref="VPredictionProbe"/>).</summary>
    Probe,

    /// <summary>Nothing said otherwise: eps, as every SD1 and SDXL base model.</summary>
    Default,
}
