using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>How to load a checkpoint: where its config and tokenizer are, and the precision and device to run in.</summary>
public sealed record CheckpointLoadOptions
{
    /// <summary>An LDM yaml (or the json form of the goldens); default: "name.yaml" beside the checkpoint, else detected from the weights.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>The CLIP vocabulary (file or folder); default: the search order of <see cref="Text.Tokenization.TokenizerLocator"/>.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>Weights and compute type of the U-Net, VAE and text encoders (A1111 runs CLIP in the model's type): float32 or bfloat16 (never float16 on CPU).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    public Device Device { get; init; } = CPU;

    /// <summary>A VAE file to use instead of the checkpoint's (bare encoder./decoder. keys, first_stage_model.*, or a .vae.pt).</summary>
    public string? VaePath { get; init; }

    /// <summary>Overrides the prediction type (v for SD2 768-v models without a yaml).</summary>
    public Prediction? Prediction { get; init; }
}

/// <summary>What the U-Net predicts.</summary>
public enum Prediction
{
    Eps,
    V,
}
