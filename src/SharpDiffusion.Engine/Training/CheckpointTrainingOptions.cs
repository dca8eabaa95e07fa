using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Training;

/// <summary>What a checkpoint training run trains: the autoencoder alone, or the denoiser (and text encoder) on frozen latents.</summary>
public enum CheckpointTrainingStage
{
    /// <summary>VAE encoder + decoder: L1 reconstruction plus a small KL term (LDM's autoencoder loss without LPIPS and GAN).</summary>
    Vae,

    /// <summary>U-Net (and optionally the text encoder) on the frozen VAE's latents: the diffusion loss.</summary>
    Unet,

    /// <summary>
    /// The text encoder alone, before the U-Net: caption-to-image instance discrimination (CLIP's contrastive loss
    /// with a learnt code per training image in place of an image tower), on the mean of the whole 77-position
    /// context, so every position of what cross-attention reads carries which image a caption names.
    /// </summary>
    Text,
}

/// <summary>Settings of <see cref="CheckpointTrainer"/> (full fine-tune, or one stage of a model trained from scratch).</summary>
public sealed record CheckpointTrainingOptions
{
    public required string DataPath { get; init; }
    public required string OutputPath { get; init; }
    public CheckpointTrainingStage Stage { get; init; } = CheckpointTrainingStage.Unet;

    /// <summary>Unet stage: train the text encoder too (LDM's <c>cond_stage_trainable</c>); a model from scratch needs it.</summary>
    public bool TrainTextEncoder { get; init; }

    /// <summary>Start from fresh weights: zero-init the U-Net's output layers as openaimodel does (zero_module).</summary>
    public bool FromScratch { get; init; }

    public long MaxSteps { get; init; } = 1000;
    public int BatchSize { get; init; } = 16;
    public int GradientAccumulation { get; init; } = 1;
    public double LearningRate { get; init; } = 1e-4;
    public double? TextEncoderLearningRate { get; init; }
    public string Schedule { get; init; } = "constant";
    public long WarmupSteps { get; init; }
    public int ScheduleCycles { get; init; } = 1;
    public string Optimizer { get; init; } = "adamw";
    public double WeightDecay { get; init; } = 0.01;
    public double MaxGradNorm { get; init; } = 1.0;
    public long Seed { get; init; }
    public long SaveEvery { get; init; }
    public string? ResumePath { get; init; }

    /// <summary>Where resumable state goes (default: OUT without extension + ".train").</summary>
    public string? StatePath { get; init; }

    /// <summary>Training resolution (square buckets of this area); default 64 latent cells' worth of pixels.</summary>
    public int? Resolution { get; init; }

    /// <summary>Unet stage: the share of captions replaced by "" (the unconditional input classifier-free guidance needs).</summary>
    public double CaptionDropout { get; init; } = 0.1;

    /// <summary>
    /// Unet stage: each step picks one line of the caption file at random (the dataset writes the name, then variants);
    /// false uses the first line only, as kohya does.
    /// </summary>
    public bool RandomCaptionLine { get; init; } = true;

    /// <summary>EMA decay of the trained weights (0: none). The file written holds the EMA weights ("ema-only").</summary>
    public double EmaDecay { get; init; }

    public double? MinSnrGamma { get; init; }
    public double NoiseOffset { get; init; }

    /// <summary>Vae stage: the KL weight relative to LDM's summed L1 (LDM's default 1e-6).</summary>
    public double KlWeight { get; init; } = 1e-6;

    /// <summary>
    /// Vae stage: train on random square crops of this side instead of whole images (the autoencoder is convolutional;
    /// LDM trains it on crops too), which makes a step as much cheaper as the crop is smaller.
    /// </summary>
    public int? Crop { get; init; }

    /// <summary>Text stage: the softmax temperature of the caption-to-image similarities (CLIP's initial 0.07).</summary>
    public double Temperature { get; init; } = 0.07;

    /// <summary>Storage type of the weights in the written checkpoint.</summary>
    public TensorDType SavePrecision { get; init; } = TensorDType.F32;
}

/// <summary>What a checkpoint training run did.</summary>
public sealed record CheckpointTrainingResult(string OutputPath, string StatePath, long Step, long StartStep, double LastLoss,
    long TrainedParameters, double? ScaleFactor, IReadOnlyList<string> DataProblems);
