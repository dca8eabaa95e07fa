using SharpDiffusion.Architectures;
using SharpDiffusion.Inspection;
using System.Diagnostics;
using TorchSharp;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// A loaded checkpoint (a single file or a diffusers folder, opened through <see cref="CheckpointFiles"/>): U-Net, VAE, text encoder(s), tokenizer and noise schedule, with the
/// architecture taken from an LDM config when there is one and detected from the weights otherwise (the same
/// code path for tiny test models and 860M U-Nets). Loading is a strict name match.
/// </summary>
public sealed class StableDiffusionCheckpoint : IDisposable
{
    private readonly IModelFile _file;
    private readonly Lazy<ClipTokenizer> _tokenizer;

    private StableDiffusionCheckpoint(IModelFile file, ModelArchitecture architecture, UNetModel unet, AutoencoderKL vae, ClipTextModel? clipL,
        OpenClipTextModel? openClip, Lazy<ClipTokenizer> tokenizer, DiscreteSchedule schedule, Prediction prediction, TimeSpan loadTime)
    {
        _file = file;
        Architecture = architecture;
        UNet = unet;
        Vae = vae;
        ClipL = clipL;
        OpenClip = openClip;
        _tokenizer = tokenizer;
        Schedule = schedule;
        Prediction = prediction;
        LoadTime = loadTime;
    }

    public string Path => _file.Path;
    public IModelFile File => _file;
    /// <summary>The checkpoint's architecture in the registry (the classifier's verdict).</summary>
    public ModelArchitecture Architecture { get; }

    public BaseFamily Family => Architecture.Family;
    public UNetModel UNet { get; }
    public AutoencoderKL Vae { get; }

    /// <summary>CLIP ViT-L (SD1; SDXL's first encoder).</summary>
    public ClipTextModel? ClipL { get; }

    /// <summary>OpenCLIP (SD2's ViT-H; SDXL's bigG).</summary>
    public OpenClipTextModel? OpenClip { get; }

    /// <summary>The loaded encoder one of the family's text-encoder slots names (by its weight layout).</summary>
    public nn.Module TextEncoder(TextEncoderSlot slot) => slot.Layout switch
    {
        TextEncoderLayout.HuggingFaceClip when ClipL is { } clip => clip,
        TextEncoderLayout.OpenClip when OpenClip is { } open => open,
        _ => throw new InvalidModelFileException(Path, $"the {slot.Kind.DisplayName()} text encoder ({slot.Layout}) is not loaded"),
    };

    /// <summary>
    /// The CLIP tokenizer (transformers-style, no HTML unescaping, as A1111 uses for CLIP-L), found on first use:
    /// a missing vocabulary is reported when text is first encoded, with every place that was searched.
    /// </summary>
    public ClipTokenizer Tokenizer => _tokenizer.Value;

    public DiscreteSchedule Schedule { get; }
    public Prediction Prediction { get; }

    /// <summary>Why <see cref="Prediction"/> is what it is (option, config, SD2 probe or default).</summary>
    public PredictionSource PredictionSource { get; private init; }
    public TimeSpan LoadTime { get; }

    /// <summary>The separate VAE file in use (--vae, or A1111's "NAME.vae.*" beside the checkpoint); null: the checkpoint's own.</summary>
    public string? VaePath { get; private init; }

    /// <summary>Pixels per latent cell times the U-Net's own down-sampling: sizes must be multiples of this.</summary>
    public int SizeMultiple => Vae.Config.DownsampleFactor * (1 << (UNet.Config.Levels - 1));

    public int LatentChannels => Vae.Config.EmbedDim;

    /// <summary>Inpainting checkpoints: the U-Net also takes the mask (1 channel) and the masked image's latent.</summary>
    public bool IsInpainting => UNet.Config.InChannels == 2 * Vae.Config.EmbedDim + 1;

    public static StableDiffusionCheckpoint Load(string path, CheckpointLoadOptions? options = null)
    {
        options ??= new CheckpointLoadOptions();
        NnpackSwitch.Disable(); // libtorch retries NNPACK on every convolution of CPUs it does not support
        var clock = Stopwatch.StartNew();
        var file = CheckpointFiles.Open(path); // a diffusers folder or an old layout arrives in the single-file names
        try
        {
            var architecture = CheckpointArchitectureDetection.Detect(file);
            if (file.Tensors.FirstOrDefault(t => t.DType == TensorDType.Quantized) is { } quantized)
                throw new InvalidModelFileException(path, $"tensor '{quantized.Name}' is block-quantized ({quantized.TypeName}); the engine runs float weights (fp32, fp16, bf16)");
            var configPath = options.ConfigPath ?? LdmConfigFile.FindBeside(path);
            var config = configPath == null ? null : LdmConfigFile.Load(configPath);

            var unetConfig = config != null
                ? UNetConfig.FromLdmConfig(config)
                : UNetConfig.DetectFromWeights(file, architecture.DenoiserPrefix);
            var vaeConfig = config != null
                ? VaeConfig.FromLdmConfig(config)
                : VaeConfig.DetectFromWeights(file, architecture.VaePrefix, architecture.LatentScale);
            bool inpainting = architecture.Variant == "inpaint" && unetConfig.InChannels == 2 * vaeConfig.EmbedDim + 1;
            if (unetConfig.InChannels != vaeConfig.EmbedDim && !inpainting)
                throw new InvalidModelFileException(path, $"the U-Net takes {unetConfig.InChannels} input channels (inpainting: 9, instruct-pix2pix: 8) and the VAE makes {vaeConfig.EmbedDim}; the engine generates with models whose U-Net takes the latents alone or inpainting models");

            // The text encoders load on a second thread while the U-Net and VAE load here: converting weights into
            // fresh memory is most of the time, and the two halves share nothing but the (thread-safe) file reads.
            var textTask = Task.Run(() => LoadTextEncoders(file, architecture, config, options));
            UNetModel? unet = null;
            AutoencoderKL? vae = null;
            string? vaePath;
            try
            {
                var factory = LayerFactory.ForLoading(options.Device, options.DType); // every parameter is loaded below
                unet = new UNetModel(unetConfig, factory);
                StrictLoader.Load(unet, file, architecture.DenoiserPrefix);
                vae = new AutoencoderKL(vaeConfig, factory);
                vaePath = options.VaePath ?? VaeOverride.FindPaired(path);
                if (vaePath == null) StrictLoader.Load(vae, file, architecture.VaePrefix);
                else VaeOverride.Load(vae, vaePath);
            }
            catch
            {
                unet?.Dispose();
                vae?.Dispose();
                try
                {
                    var (l, g) = textTask.GetAwaiter().GetResult();
                    l?.Dispose();
                    g?.Dispose();
                }
                catch (Exception)
                {
                    // The first failure is the one reported.
                }
                throw;
            }
            ClipTextModel? clipL;
            OpenClipTextModel? openClip;
            try
            {
                (clipL, openClip) = textTask.GetAwaiter().GetResult();
            }
            catch
            {
                unet.Dispose();
                vae.Dispose();
                throw;
            }

            // A diffusers folder is its own model folder (its tokenizer/ is inside it).
            var modelFolder = Directory.Exists(path) ? System.IO.Path.GetFullPath(path) : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            var tokenizerPath = options.TokenizerPath;
            // The smallest token table of the text encoders: the tokenizer's ids must all fit it.
            var vocabularySize = file.Tensors.Where(t => t.Name.EndsWith("token_embedding.weight", StringComparison.Ordinal)).Select(t => (int?)t.Shape[0]).Min();
            var tokenizer = new Lazy<ClipTokenizer>(() => new TokenizerLocator().LoadTokenizer(tokenizerPath, modelFolder, htmlUnescape: false, vocabularySize, modelFile: path));
            var schedule = file.Tensors.Any(t => t.Name == "alphas_cumprod")
                ? DiscreteSchedule.FromCheckpoint(file)
                : DiscreteSchedule.ScaledLinear();
            var (prediction, predictionSource) = ChoosePrediction(options, config, architecture, unet);
            return new StableDiffusionCheckpoint(file, architecture, unet, vae, clipL, openClip, tokenizer, schedule, prediction, clock.Elapsed)
            {
                VaePath = vaePath,
                PredictionSource = predictionSource,
            };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static (ClipTextModel? ClipL, OpenClipTextModel? OpenClip) LoadTextEncoders(IModelFile file, ModelArchitecture architecture, ConfigTree? config, CheckpointLoadOptions options)
    {
        ClipTextModel? clipL = null;
        OpenClipTextModel? openClip = null;
        try
        {
            // Each of the family's text encoders where the registry says it is: transformers-named CLIP or OpenCLIP.
            foreach (var slot in architecture.TextEncoders)
            {
                var textOptions = TextOptions(config, HeadsKey(architecture, slot), options.DType);
                if (slot.Layout == TextEncoderLayout.HuggingFaceClip) clipL = ClipTextModel.Load(file, slot.Prefix, textOptions);
                else openClip = OpenClipTextModel.Load(file, slot.Prefix, textOptions);
            }
            clipL?.to(options.Device);
            openClip?.to(options.Device);
            return (clipL, openClip);
        }
        catch
        {
            clipL?.Dispose();
            openClip?.Dispose();
            throw;
        }
    }

    /// <summary>Where our JSON model configs (the goldens' form) give an encoder's heads: one encoder, or SDXL's clip_l / clip_g.</summary>
    private static string HeadsKey(ModelArchitecture architecture, TextEncoderSlot slot) =>
        architecture.TextEncoders.Count == 1 ? "text_encoder.num_attention_heads"
        : slot.Layout == TextEncoderLayout.HuggingFaceClip ? "text_encoders.clip_l.num_attention_heads"
        : "text_encoders.clip_g.heads";

    /// <summary>
    /// Heads are not visible in weights: real CLIP/OpenCLIP towers use 64-wide heads (the encoders' default); a
    /// config may say otherwise (the goldens' json form lists them per encoder).
    /// </summary>
    private static TextEncoderOptions TextOptions(ConfigTree? config, string headsKey, ScalarType dtype) =>
        new() { Heads = config == null ? null : (int?)ConfigTree.Integer(config.Find(headsKey)), DType = dtype };

    /// <summary>
    /// The caller's choice, else the config's, else for SD2 (whose 512 eps and 768 v models have the same shapes)
    /// A1111's probe of the U-Net, else eps. A1111 probes only 4-channel SD2 U-Nets (inpainting/depth models are eps).
    /// </summary>
    private static (Prediction, PredictionSource) ChoosePrediction(CheckpointLoadOptions options, ConfigTree? config, ModelArchitecture architecture, UNetModel unet)
    {
        if (options.Prediction is Prediction given) return (given, PredictionSource.Option);
        if (PredictionFromConfig(config) is Prediction configured) return (configured, PredictionSource.Config);
        if (ModelArchitectures.PredictionAmbiguous(architecture.Family) && unet.Config.InChannels == architecture.LatentChannels)
            return (VPredictionProbe.Guess(unet), PredictionSource.Probe);
        return (architecture.Prediction == PredictionType.V ? Prediction.V : Prediction.Eps, PredictionSource.Default);
    }

    private static Prediction? PredictionFromConfig(ConfigTree? config)
    {
        if (config == null) return null;
        var value = config.Find("parameterization") as string;
        if (value == null)
        {
            try { value = LdmConfigFile.ModelRoot(config).Find("model.params.parameterization") as string; }
            catch (InvalidModelFileException) { value = null; }
        }
        return value switch
        {
            "v" => Prediction.V,
            "eps" => Prediction.Eps,
            _ => null,
        };
    }

    /// <summary>
    /// The text conditioner for one job: CLIP skip and textual-inversion lookups differ between jobs, the encoders
    /// do not.
    /// </summary>
    public ITextConditioner CreateTextConditioner(int clipSkip = 1, Func<int, IPromptEmbeddingLookup?>? embeddingsForWidth = null)
    {
        var chunker = new PromptChunker(Tokenizer, embeddings: embeddingsForWidth?.Invoke(ClipL?.Width ?? OpenClip!.Width));
        // The conditioner follows the encoders the architecture has: CLIP alone (SD1), OpenCLIP alone (SD2), both with
        // the pooled bigG output and size embeddings (SDXL).
        return (ClipL, OpenClip) switch
        {
            ({ } clip, null) => new Sd1TextConditioner(clip, chunker, clipSkip),
            // The refiner's bigG also feeds the vector input (pooled text, sizes, aesthetic score); SD2's only cross-attends.
            (null, { } open) when UNet.Config.AdmInChannels != null => new SdxlTextConditioner(null, open,
                OpenClipChunker(embeddingsForWidth?.Invoke(open.Width)), SdxlSizeEmbeddingDim),
            (null, { } open) => new Sd2TextConditioner(open, OpenClipChunker(embeddingsForWidth?.Invoke(open.Width))),
            ({ } clip, { } open) => new SdxlTextConditioner(clip, open, chunker, SdxlSizeEmbeddingDim,
                chunkerG: OpenClipChunker(embeddingsForWidth?.Invoke(open.Width))),
            _ => throw new InvalidOperationException($"{Architecture.DisplayName} has no text encoder the engine runs"),
        };
    }

    /// <summary>
    /// The width of each of SDXL's embedded numbers: the U-Net's vector input is the pooled text embedding plus six
    /// of them in the base model (2816 = 1280 + 6 x 256: original size, crop, target size), five in the refiner
    /// (2560 = 1280 + 5 x 256: original size, crop, aesthetic score).
    /// </summary>
    internal int SdxlSizeEmbeddingDim => ClipL == null ? EmbeddedNumberWidth(5, "five (sizes, crop, aesthetic score)") : EmbeddedNumberWidth(6, "six size");

    private int EmbeddedNumberWidth(int count, string what) =>
        (UNet.Config.AdmInChannels ?? 0) - (int)OpenClip!.ProjectionDim is var rest && rest > 0 && rest % count == 0
            ? rest / count
            : throw new InvalidModelFileException(Path, $"the U-Net's vector input ({UNet.Config.AdmInChannels}) does not fit the text projection ({OpenClip!.ProjectionDim}) plus {what} embeddings");

    /// <summary>open_clip's tokenizer does unescape HTML, unlike transformers' CLIPTokenizer.</summary>
    private PromptChunker OpenClipChunker(IPromptEmbeddingLookup? embeddings) =>
        new(new ClipTokenizer(Tokenizer.Vocabulary, htmlUnescape: true), embeddings: embeddings);

    /// <summary>The denoiser the samplers call: eps or v parameterisation over this U-Net (with ControlNets when given).</summary>
    public DiscreteDenoiser CreateDenoiser(ControlNet.ControlStack? control = null)
    {
        var model = new UNetDiffusionModel(UNet, control);
        return Prediction == Prediction.V ? new VDenoiser(model, Schedule) : new EpsDenoiser(model, Schedule);
    }

    public void Dispose()
    {
        UNet.Dispose();
        Vae.Dispose();
        ClipL?.Dispose();
        OpenClip?.Dispose();
        _file.Dispose();
    }
}
