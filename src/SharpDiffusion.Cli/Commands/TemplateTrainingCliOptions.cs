using System.CommandLine;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Training;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// The options <c>train embedding</c> and <c>train hypernetwork</c> share (A1111's Train tab: model, data, template,
/// rate, steps, batching, buckets, captions, checkpoints, and generate's model options), defined once.
/// </summary>
internal sealed class TemplateTrainingCliOptions(string defaultRate, string rateExample, string trainedPart)
{
    public Option<string> Model { get; } = new("--model", "-m") { Description = "Base checkpoint (SD 1.x, 2.x or SDXL single file); never written", Required = true };
    public Option<string> Data { get; } = new("--data") { Description = "Data folder: images (or N_concept/ subfolders) with NAME.txt captions for [filewords]", Required = true };
    private readonly Option<string> _template = new("--template") { Description = "Prompt template file, or built-in style_filewords / subject_filewords", DefaultValueFactory = _ => PromptTemplates.DefaultName };
    private readonly Option<string> _lr = new("--lr") { Description = $"Learning rate or A1111 schedule \"{rateExample}\"", DefaultValueFactory = _ => defaultRate };
    private readonly Option<string?> _config = new("--config") { Description = "LDM yaml / config of the checkpoint (as generate)" };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "CLIP vocabulary (as generate)" };
    public Option<string> Precision { get; } = new("--precision") { Description = $"fp32 or bf16 for the frozen model ({trainedPart} stays float32)", DefaultValueFactory = _ => "fp32" };
    private readonly Option<int> _clipSkip = new("--clip-skip") { Description = "CLIP skip", DefaultValueFactory = _ => 1 };
    private readonly Option<string?> _vae = new("--vae") { Description = "A VAE to encode the images with instead of the checkpoint's" };
    private readonly Option<int> _maxSteps = new("--max-steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 100000 };
    private readonly Option<int> _batch = new("--batch") { Description = "Images per micro-batch (one bucket)", DefaultValueFactory = _ => 1 };
    private readonly Option<int> _gradAccum = new("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
    private readonly Option<long> _seed = new("--seed") { Description = "Seed of every random choice", DefaultValueFactory = _ => 42 };
    private readonly Option<int?> _resolution = new("--resolution") { Description = "Bucket area is resolution^2 (default: the model's default size)" };
    private readonly Option<int> _bucketStep = new("--bucket-step") { Description = "Bucket size step in pixels", DefaultValueFactory = _ => 64 };
    private readonly Option<bool> _flip = new("--flip") { Description = "Random horizontal flips" };
    private readonly Option<bool> _shuffle = new("--shuffle-tags") { Description = "Shuffle the caption's comma-separated tags" };
    private readonly Option<double> _tagDropout = new("--tag-dropout") { Description = "Probability of dropping each tag", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _saveEvery = new("--save-every") { Description = "Write a resumable checkpoint every N steps", DefaultValueFactory = _ => 0 };
    private readonly Option<string?> _resume = new("--resume") { Description = "Continue from the checkpoint folder (OUT.train) of an earlier run" };
    private readonly Option<string?> _stateDir = new("--state-dir") { Description = "Where checkpoints and cached latents go (default OUT.train next to --out)" };
    public Option<bool> Json { get; } = new("--json") { Description = "One JSON line per step on stdout" };

    /// <summary>Adds the shared options after the command's own.</summary>
    public void AddTo(Command command, params Option[] own)
    {
        foreach (var option in new Option[] { Model, Data }.Concat(own).Concat(new Option[] { _template, _lr, _config, _tokenizer, Precision,
                     _clipSkip, _vae, _maxSteps, _batch, _gradAccum, _seed, _resolution, _bucketStep, _flip, _shuffle, _tagDropout, _saveEvery,
                     _resume, _stateDir, Json }))
            command.Options.Add(option);
    }

    /// <summary>The shared settings filled into a command's own options record.</summary>
    public T Apply<T>(ParseResult r, T options) where T : TemplateTrainingOptions => (T)(options with
    {
        Template = r.GetValue(_template)!,
        LearningRate = r.GetValue(_lr)!,
        StatePath = r.GetValue(_stateDir),
        ResumePath = r.GetValue(_resume),
        MaxSteps = r.GetValue(_maxSteps),
        BatchSize = r.GetValue(_batch),
        GradientAccumulation = r.GetValue(_gradAccum),
        Seed = r.GetValue(_seed),
        Resolution = r.GetValue(_resolution),
        BucketStep = r.GetValue(_bucketStep),
        FlipAugment = r.GetValue(_flip),
        ShuffleTags = r.GetValue(_shuffle),
        TagDropout = r.GetValue(_tagDropout),
        ClipSkip = r.GetValue(_clipSkip),
        SaveEvery = r.GetValue(_saveEvery),
    });

    /// <summary>How the frozen model loads (generate's options).</summary>
    public CheckpointLoadOptions LoadOptions(ParseResult r, TorchSharp.torch.ScalarType dtype) =>
        new() { ConfigPath = r.GetValue(_config), TokenizerPath = r.GetValue(_tokenizer), DType = dtype, VaePath = r.GetValue(_vae) };
}
