namespace SharpDiffusion.Engine.Training;

/// <summary>Everything a LoRA training run needs besides the model (defaults are kohya's train_network.py defaults where it has one).</summary>
public sealed record LoraTrainingOptions
{
    public required string DataPath { get; init; }

    /// <summary>The LoRA file written at the end (.safetensors).</summary>
    public required string OutputPath { get; init; }

    /// <summary>Where checkpoints and the latent cache live; default <c>OUT-without-extension.train/</c>.</summary>
    public string? StatePath { get; init; }

    /// <summary>A state folder of an earlier run of the same settings to continue from.</summary>
    public string? ResumePath { get; init; }

    public LoraAlgorithm Algorithm { get; init; } = LoraAlgorithm.Lora;
    public int Rank { get; init; } = 4;
    public double? Alpha { get; init; }

    /// <summary>Rank on 3x3 convolutions; default the rank for the LyCORIS algorithms (as LyCORIS), none for LoRA (as kohya).</summary>
    public int? ConvRank { get; init; }

    /// <summary>Alpha on 3x3 convolutions; default the alpha (LyCORIS and kohya).</summary>
    public double? ConvAlpha { get; init; }
    public bool TrainUnet { get; init; } = true;
    public bool TrainTextEncoder { get; init; } = true;

    public double LearningRate { get; init; } = 1e-4;
    public double? UnetLearningRate { get; init; }
    public double? TextEncoderLearningRate { get; init; }

    /// <summary>A <see cref="LearningRateSchedule.Names"/> entry, or an A1111 rate list ("0.005:100, 1e-3:1000, 1e-5").</summary>
    public string Schedule { get; init; } = "constant";
    public int WarmupSteps { get; init; }
    public int ScheduleCycles { get; init; } = 1;

    /// <summary>adamw or lion.</summary>
    public string Optimizer { get; init; } = "adamw";
    public double? WeightDecay { get; init; }

    /// <summary>Gradient clipping by total norm (kohya's max_grad_norm 1.0); 0 turns it off.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    public int MaxSteps { get; init; } = 1600;

    /// <summary>
    /// Train for this many epochs instead of <see cref="MaxSteps"/> (kohya's max_train_epochs, which overrides the step
    /// count): steps = ceil(micro-batches per epoch / gradient accumulation) · epochs.
    /// </summary>
    public int? Epochs { get; init; }
    public int BatchSize { get; init; } = 1;
    public int GradientAccumulation { get; init; } = 1;
    public long Seed { get; init; } = 42;

    public double NoiseOffset { get; init; }
    public double? MinSnrGamma { get; init; }
    public int MinTimestep { get; init; }
    public int MaxTimestep { get; init; } = KohyaNoiseSchedule.TrainTimesteps;

    /// <summary>Bucket area is Resolution²; default the model's default image size.</summary>
    public int? Resolution { get; init; }
    public int BucketStep { get; init; } = 64;
    public bool FlipAugment { get; init; }
    public CaptionOptions Captions { get; init; } = new();
    public int ClipSkip { get; init; } = 1;

    /// <summary>Write a resumable checkpoint every N optimizer steps (0: only at the end).</summary>
    public int SaveEvery { get; init; }

    /// <summary>Generate the <see cref="SamplePromptsPath"/> prompts every N optimizer steps (0: never).</summary>
    public int SampleEvery { get; init; }

    /// <summary>A kohya prompt file (one prompt per line with --n --w --h --d --s --l); images go to samples/ beside the output.</summary>
    public string? SamplePromptsPath { get; init; }

    /// <summary>The network options these settings give (rank and alpha defaults resolved as kohya / LyCORIS do).</summary>
    public LoraNetworkOptions NetworkOptions()
    {
        double alpha = Alpha ?? Rank;
        int convRank = ConvRank ?? (Algorithm == LoraAlgorithm.Lora ? 0 : Rank);
        return new LoraNetworkOptions
        {
            Algorithm = Algorithm,
            Rank = Rank,
            Alpha = alpha,
            ConvRank = convRank,
            ConvAlpha = ConvAlpha ?? alpha,
            TrainUnet = TrainUnet,
            TrainTextEncoder = TrainTextEncoder,
        };
    }

    /// <summary>The optimizer steps of the run: <see cref="MaxSteps"/>, or the steps of <see cref="Epochs"/> epochs of <paramref name="microBatchesPerEpoch"/>.</summary>
    public int TotalSteps(int microBatchesPerEpoch) =>
        Epochs is int epochs ? (int)Math.Ceiling(microBatchesPerEpoch / (double)GradientAccumulation) * epochs : MaxSteps;
}

/// <summary>One progress report, after an optimizer step.</summary>
public sealed record TrainingProgress(long Step, long TotalSteps, double Loss, double SmoothedLoss, double LearningRate, double StepsPerSecond, TimeSpan Eta);

/// <summary>What a finished run did.</summary>
public sealed record LoraTrainingResult(string OutputPath, string StatePath, long Steps, long ResumedFrom, double FinalLoss, int Modules, IReadOnlyList<string> DataProblems);
