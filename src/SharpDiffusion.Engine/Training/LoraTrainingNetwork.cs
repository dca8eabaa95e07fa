using SharpDiffusion.Inspection;
using SharpDiffusion.Architectures;
using System.Globalization;
using System.Text.RegularExpressions;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>The network algorithm trained: kohya LoRA, or LyCORIS LoCon / LoHa / LoKr (<c>lycoris.kohya</c>).</summary>
public enum LoraAlgorithm
{
    Lora,
    LoCon,
    LoHa,
    LoKr,
}

/// <summary>Which parts a LoRA trains, its algorithm and size.</summary>
public sealed record LoraNetworkOptions
{
    public LoraAlgorithm Algorithm { get; init; } = LoraAlgorithm.Lora;
    public int Rank { get; init; } = 4;
    public double Alpha { get; init; } = 1.0;

    /// <summary>Rank of the modules on convolutions with a kernel larger than 1x1 (0: those layers are not wrapped).</summary>
    public int ConvRank { get; init; }
    public double ConvAlpha { get; init; } = 1.0;
    public bool TrainUnet { get; init; } = true;
    public bool TrainTextEncoder { get; init; } = true;

    /// <summary>
    /// Whether the U-Net's ResnetBlock2D / Downsample2D / Upsample2D layers are wrapped besides the transformer blocks:
    /// always for the LyCORIS algorithms, and for kohya's LoRA when it has a conv rank (LoRA-C3Lier).
    /// </summary>
    public bool WrapsResnetBlocks => Algorithm != LoraAlgorithm.Lora || ConvRank > 0;

    /// <summary>"lora", "locon", "loha", "lokr" (ss_network_args' algo).</summary>
    public string AlgorithmName => Algorithm.ToString().ToLowerInvariant();

    public static bool TryParseAlgorithm(string text, out LoraAlgorithm algorithm) =>
        Enum.TryParse(text, ignoreCase: true, out algorithm) && Enum.IsDefined(algorithm) && !int.TryParse(text, out _);
}

/// <summary>
/// The network being trained: one <see cref="TrainableNetworkModule"/> per wrapped layer, named <c>lora_unet_</c> +
/// diffusers path / <c>lora_te_</c> + transformers path with '.' → '_'. kohya's <c>networks/lora.py</c> wraps every
/// Linear and 1x1 Conv2d inside the U-Net's transformer blocks (proj_in, proj_out, attn1/attn2 to_q/to_k/to_v/to_out.0,
/// ff.net.0.proj, ff.net.2) and the CLIP text encoder's q/k/v/out_proj and fc1/fc2; with a conv rank (kohya) or a
/// LyCORIS algorithm also the ResnetBlock2D / Downsample2D / Upsample2D layers (time_emb_proj and the 1x1 shortcut at
/// the rank, the 3x3 convolutions at the conv rank). LyCORIS's "full" preset also wraps conv_in, conv_out and the
/// time embedding; those are left out here (kohya's LoCon set), a choice noted in the README.
/// </summary>
public sealed partial class LoraTrainingNetwork : IDisposable
{
    [GeneratedRegex(@"^text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$")]
    private static partial Regex TextEncoderTarget();

    private readonly StableDiffusionCheckpoint _checkpoint;
    private readonly Dictionary<TrainableNetworkModule, Target> _targets;
    private LoraTrainingHooks? _hooks;

    private LoraTrainingNetwork(StableDiffusionCheckpoint checkpoint, LoraNetworkOptions options, Dictionary<TrainableNetworkModule, Target> targets)
    {
        _checkpoint = checkpoint;
        Options = options;
        _targets = targets;
        Modules = targets.Keys.ToList();
    }

    public LoraNetworkOptions Options { get; }

    /// <summary>Text-encoder modules first, then the U-Net's (kohya's order).</summary>
    public IReadOnlyList<TrainableNetworkModule> Modules { get; }

    /// <summary>Every trainable tensor by its file name (<c>&lt;module&gt;.lora_down.weight</c>, <c>.hada_w1_a</c>, ...), in a fixed order.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() => Modules.SelectMany(m => m.NamedParameters());

    /// <summary>
    /// Builds the modules for <paramref name="checkpoint"/> with kohya's / LyCORIS's initialisation (ΔW = 0 at the
    /// start, so training starts from the base model), drawn from torch's CPU generator seeded with
    /// <paramref name="seed"/>, held in <paramref name="dtype"/> (float32; float64 for finite-difference checks).
    /// </summary>
    public static LoraTrainingNetwork Create(StableDiffusionCheckpoint checkpoint, LoraNetworkOptions options, long seed, ScalarType dtype = ScalarType.Float32)
    {
        if (options.Rank < 1) throw new ArgumentException("the LoRA rank must be at least 1");
        if (options.ConvRank < 0) throw new ArgumentException("the conv rank must not be negative");
        using var generator = new Generator((ulong)seed);
        var layers = new Dictionary<TrainableNetworkModule, Target>();
        foreach (var target in Targets(checkpoint, options))
        {
            var wrapped = target.Shape;
            bool spatial = wrapped.KernelElements > 1;
            int rank = spatial ? options.ConvRank : options.Rank;
            double alpha = spatial ? options.ConvAlpha : options.Alpha;
            TrainableNetworkModule module = options.Algorithm switch
            {
                LoraAlgorithm.LoHa => TrainableLoHaModule.Create(target.Name, target.LayerPath, target.IsTextEncoder, wrapped, rank, alpha, generator, dtype),
                LoraAlgorithm.LoKr => TrainableLoKrModule.Create(target.Name, target.LayerPath, target.IsTextEncoder, wrapped, rank, alpha, generator, dtype),
                _ => TrainableLoraModule.Create(target.Name, target.LayerPath, target.IsTextEncoder, wrapped, rank, alpha, generator, dtype),
            };
            layers.Add(module, target);
        }
        return new LoraTrainingNetwork(checkpoint, options, layers);
    }

    /// <summary>
    /// Loads the modules of a kohya LoRA or LyCORIS LoCon/LoHa/LoKr file (every module the file has must fit a target of
    /// this checkpoint; targets the file lacks are not trained). Ranks and alphas come from the file (alpha absent:
    /// the rank). The weights are held in <paramref name="dtype"/> (float32 for training; float64 for finite-difference checks).
    /// </summary>
    public static LoraTrainingNetwork Load(StableDiffusionCheckpoint checkpoint, IModelFile file, LoraNetworkOptions options, ScalarType dtype = ScalarType.Float32)
    {
        var byName = file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var layers = new Dictionary<TrainableNetworkModule, Target>();
        var algorithms = new HashSet<LoraAlgorithm>();
        int rank = 0;
        double alpha = 0;
        Parameter? Read(string name) => byName.TryGetValue(name, out var info) ? new Parameter(TensorReading.Read(file, info, dtype), requires_grad: true) : null;
        foreach (var target in Targets(checkpoint, options with { TrainUnet = true, TrainTextEncoder = true, ConvRank = 1, Algorithm = LoraAlgorithm.LoCon }))
        {
            string n = target.Name;
            var wrapped = target.Shape;
            double? fileAlpha = null;
            if (byName.TryGetValue(n + ".alpha", out var alphaInfo))
            {
                using var a = TensorReading.Read(file, alphaInfo, ScalarType.Float64);
                fileAlpha = a.item<double>();
            }
            TrainableNetworkModule module;
            if (Read(n + ".lora_down.weight") is { } down)
            {
                var up = Read(n + ".lora_up.weight") ?? throw new InvalidModelFileException(file.Path, $"{n} has lora_down but no lora_up");
                module = new TrainableLoraModule(n, target.LayerPath, target.IsTextEncoder, wrapped, down, up, fileAlpha ?? down.shape[0]);
                algorithms.Add(wrapped.KernelElements > 1 ? LoraAlgorithm.LoCon : LoraAlgorithm.Lora);
            }
            else if (Read(n + ".hada_w1_a") is { } w1a)
            {
                var parts = new[] { "hada_w1_b", "hada_w2_a", "hada_w2_b" }.Select(s => Read(n + "." + s)
                    ?? throw new InvalidModelFileException(file.Path, $"{n} has hada_w1_a but no {s}")).ToArray();
                module = new TrainableLoHaModule(n, target.LayerPath, target.IsTextEncoder, wrapped, w1a, parts[0], parts[1], parts[2], fileAlpha ?? parts[0].shape[0]);
                algorithms.Add(LoraAlgorithm.LoHa);
            }
            else if (Read(n + ".lokr_w1") is { } w1)
            {
                var parameters = new List<(string, Parameter)> { ("lokr_w1", w1) };
                int moduleRank;
                if (Read(n + ".lokr_w2") is { } w2)
                {
                    parameters.Add(("lokr_w2", w2));
                    moduleRank = (int)(fileAlpha ?? 1);
                }
                else
                {
                    var w2a = Read(n + ".lokr_w2_a") ?? throw new InvalidModelFileException(file.Path, $"{n} has neither lokr_w2 nor lokr_w2_a");
                    var w2b = Read(n + ".lokr_w2_b") ?? throw new InvalidModelFileException(file.Path, $"{n} has lokr_w2_a but no lokr_w2_b");
                    parameters.Add(("lokr_w2_a", w2a));
                    parameters.Add(("lokr_w2_b", w2b));
                    moduleRank = (int)w2b.shape[0];
                }
                module = new TrainableLoKrModule(n, target.LayerPath, target.IsTextEncoder, wrapped, moduleRank, fileAlpha ?? moduleRank, parameters);
                algorithms.Add(LoraAlgorithm.LoKr);
            }
            else continue;
            if (!module.IsConvolution || wrapped.KernelElements == 1)
            {
                rank = module.Rank;
                alpha = module.Alpha;
            }
            layers.Add(module, target);
        }
        if (layers.Count == 0) throw new InvalidModelFileException(file.Path, "no LoRA/LyCORIS module of this file fits the model");
        var algorithm = algorithms.Contains(LoraAlgorithm.LoKr) ? LoraAlgorithm.LoKr : algorithms.Contains(LoraAlgorithm.LoHa) ? LoraAlgorithm.LoHa
            : algorithms.Contains(LoraAlgorithm.LoCon) ? LoraAlgorithm.LoCon : LoraAlgorithm.Lora;
        return new LoraTrainingNetwork(checkpoint, options with { Algorithm = algorithm, Rank = rank, Alpha = alpha }, layers);
    }

    /// <summary>
    /// Where a module's branch enters the forward pass: a Linear/Conv2d's output (<paramref name="Layer"/>), or one row
    /// block (q, k or v) of an OpenCLIP packed projection (<paramref name="Packed"/>), which kohya trains as the HF
    /// model's separate q_proj/k_proj/v_proj.
    /// </summary>
    private sealed record Target(string Name, string LayerPath, bool IsTextEncoder, WrappedLayer Shape, nn.Module<Tensor, Tensor>? Layer, PackedSlice? Packed = null)
    {
        public static Target ForLayer(string name, string layerPath, bool isTextEncoder, nn.Module<Tensor, Tensor> layer) =>
            new(name, layerPath, isTextEncoder, new WrappedLayer(layer.parameters().First().shape, layer as Conv2d), layer);
    }

    private sealed record PackedSlice(OpenClipTextModel Encoder, int Layer, int Index);

    private static List<Target> Targets(StableDiffusionCheckpoint checkpoint, LoraNetworkOptions options)
    {
        var file = checkpoint.File;
        var textEncoder = new List<Target>();
        var unet = new List<Target>();
        if (options.TrainTextEncoder)
        {
            // kohya wraps q/k/v/out_proj and fc1/fc2 of each text encoder under transformers names (lora_te_, or
            // lora_te1_/lora_te2_ on SDXL), OpenCLIP towers included: their packed in_proj is three modules.
            foreach (var slot in checkpoint.Architecture.TextEncoders)
            {
                string prefix = slot.Prefix, kohya = slot.KohyaPrefixes[0];
                if (slot.Layout is not (TextEncoderLayout.HuggingFaceClip or TextEncoderLayout.OpenClip))
                    throw new InvalidModelFileException(file.Path, $"text-encoder LoRA training runs on CLIP and OpenCLIP encoders, not {slot.Kind.DisplayName()}; train the U-Net only (--train unet)");
                switch (checkpoint.TextEncoder(slot))
                {
                    case ClipTextModel clip:
                    {
                        var layers = NamedLayers(clip);
                        foreach (var info in file.Tensors)
                        {
                            if (!info.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                            string hf = info.Name[prefix.Length..];
                            if (!TextEncoderTarget().IsMatch(hf)) continue;
                            string path = hf[..^".weight".Length];
                            textEncoder.Add(Target.ForLayer(kohya + path.Replace('.', '_'), prefix + path, true, layers[path]));
                        }
                        break;
                    }
                    case OpenClipTextModel open:
                    {
                        var layers = NamedLayers(open);
                        foreach (var info in file.Tensors)
                        {
                            if (!info.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                            string key = info.Name[prefix.Length..];
                            foreach (var hf in OpenClipKeyNames.ToHf(key, withProjection: slot.Pooled))
                            {
                                if (!TextEncoderTarget().IsMatch(hf.Key)) continue;
                                string name = kohya + hf.Key[..^".weight".Length].Replace('.', '_');
                                if (hf.SliceCount == 1)
                                {
                                    string path = key[..^".weight".Length];
                                    textEncoder.Add(Target.ForLayer(name, prefix + path, true, layers[path]));
                                    continue;
                                }
                                int layer = int.Parse(key.Split('.')[2], CultureInfo.InvariantCulture); // transformer.resblocks.N.attn.in_proj_weight
                                long width = info.Shape[1];
                                textEncoder.Add(new Target(name, prefix + key, true, new WrappedLayer([width, width], null), null,
                                    new PackedSlice(open, layer, hf.SliceIndex)));
                            }
                        }
                        break;
                    }
                }
            }
        }
        if (options.TrainUnet)
        {
            // kohya names SD 1.x/2.x modules by their diffusers path, SDXL ones (sdxl_original_unet) by the LDM path.
            bool ldmNames = checkpoint.Family == BaseFamily.SDXL;
            var layers = NamedLayers(checkpoint.UNet);
            var unetKeys = file.Tensors.Select(t => t.Name).Where(n => n.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)).ToList();
            var layout = UnetLayout.FromLdmKeys(unetKeys);
            foreach (var info in file.Tensors)
            {
                if (!info.Name.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal) || !info.Name.EndsWith(".weight", StringComparison.Ordinal)) continue;
                if (info.Shape.Length is not (2 or 4)) continue;
                bool spatial = info.Shape.Length == 4 && (info.Shape[2] != 1 || info.Shape[3] != 1);
                string? diffusers = UnetKeyNames.ToDiffusers(info.Name[LdmPrefixes.Unet.Length..], layout);
                if (diffusers == null) continue;
                bool transformer = diffusers.Contains(".attentions.", StringComparison.Ordinal);
                bool resnet = options.WrapsResnetBlocks && (diffusers.Contains(".resnets.", StringComparison.Ordinal)
                    || diffusers.Contains(".downsamplers.", StringComparison.Ordinal) || diffusers.Contains(".upsamplers.", StringComparison.Ordinal));
                if (!transformer && !resnet) continue;
                if (spatial && (!resnet || options.ConvRank == 0)) continue; // 3x3 convolutions take the conv rank
                if (diffusers.EndsWith(".norm.weight", StringComparison.Ordinal)) continue;
                string path = info.Name[LdmPrefixes.Unet.Length..^".weight".Length];
                if (!layers.TryGetValue(path, out var layer)) continue; // norms
                string moduleName = ldmNames ? path : diffusers[..^".weight".Length];
                    unet.Add(Target.ForLayer("lora_unet_" + moduleName.Replace('.', '_'), LdmPrefixes.Unet + path, false, layer));
            }
        }
        return [.. textEncoder, .. unet];
    }

    private static Dictionary<string, nn.Module<Tensor, Tensor>> NamedLayers(nn.Module root)
    {
        var result = new Dictionary<string, nn.Module<Tensor, Tensor>>(StringComparer.Ordinal);
        foreach (var (name, module) in root.named_modules())
            if (module is Linear or Conv2d) result[name] = (nn.Module<Tensor, Tensor>)module;
        return result;
    }

    /// <summary>Adds the branches to the model's forward pass (idempotent); the U-Net then records gradients.</summary>
    public void Attach()
    {
        if (_hooks != null) return;
        _hooks = new LoraTrainingHooks(
            _targets.Where(p => p.Value.Layer != null).Select(p => (p.Value.Layer!, p.Key)),
            _targets.Where(p => p.Value.Packed != null).GroupBy(p => (p.Value.Packed!.Encoder, p.Value.Packed.Layer)).Select(g =>
            {
                var slices = new TrainableNetworkModule?[3];
                foreach (var (module, target) in g) slices[target.Packed!.Index] = module;
                return (g.Key.Encoder, g.Key.Layer, slices);
            }));
        _checkpoint.UNet.RecordsGradients = true;
    }

    /// <summary>Removes the branches: the model is the base model again.</summary>
    public void Detach()
    {
        _hooks?.Dispose();
        _hooks = null;
        _checkpoint.UNet.RecordsGradients = false;
    }

    /// <summary>The tensors of a kohya / LyCORIS file: each module's parameters and its alpha as a 0-d tensor.</summary>
    public IEnumerable<TensorToWrite> FileTensors(TensorDType dtype) => Modules.SelectMany(m => m.NamedParameters()
        .Select(p => FloatTensor(p.Name, p.Parameter, dtype))
        .Append(new TensorToWrite(m.Name + ".alpha", dtype, [], s => s.Write(DTypeConversion.FromSingle([(float)m.Alpha], dtype)))));

    internal static TensorToWrite FloatTensor(string name, Tensor value, TensorDType dtype)
    {
        float[] values;
        using (no_grad())
        {
            using var cpu = value.detach().to(ScalarType.Float32).contiguous();
            values = cpu.data<float>().ToArray();
        }
        return new TensorToWrite(name, dtype, value.shape, s => s.Write(DTypeConversion.FromSingle(values, dtype)));
    }

    public void Dispose()
    {
        Detach();
        foreach (var module in Modules) module.Dispose();
    }
}
