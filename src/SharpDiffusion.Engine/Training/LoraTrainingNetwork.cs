using SharpDiffusion.Architectures;
using System.Text.RegularExpressions;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>Which parts a LoRA trains, and its size.</summary>
public sealed record LoraNetworkOptions
{
    public int Rank { get; init; } = 4;
    public double Alpha { get; init; } = 1.0;
    public bool TrainUnet { get; init; } = true;
    public bool TrainTextEncoder { get; init; } = true;
}

/// <summary>
/// The LoRA being trained: one <see cref="TrainableLoraModule"/> per layer kohya's <c>networks/lora.py</c> wraps by
/// default — every Linear and 1x1 Conv2d inside the U-Net's transformer blocks (proj_in, proj_out, attn1/attn2
/// to_q/to_k/to_v/to_out.0, ff.net.0.proj, ff.net.2) and the CLIP text encoder's q/k/v/out_proj and fc1/fc2 — named
/// <c>lora_unet_</c> + diffusers path / <c>lora_te_</c> + transformers path with '.' → '_'.
/// </summary>
public sealed partial class LoraTrainingNetwork : IDisposable
{
    [GeneratedRegex(@"^text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$")]
    private static partial Regex TextEncoderTarget();

    private readonly StableDiffusionCheckpoint _checkpoint;
    private readonly Dictionary<TrainableLoraModule, nn.Module<Tensor, Tensor>> _layers;
    private LoraTrainingHooks? _hooks;

    private LoraTrainingNetwork(StableDiffusionCheckpoint checkpoint, LoraNetworkOptions options, Dictionary<TrainableLoraModule, nn.Module<Tensor, Tensor>> layers)
    {
        _checkpoint = checkpoint;
        Options = options;
        _layers = layers;
        Modules = layers.Keys.ToList();
    }

    public LoraNetworkOptions Options { get; }

    /// <summary>Text-encoder modules first, then the U-Net's (kohya's order).</summary>
    public IReadOnlyList<TrainableLoraModule> Modules { get; }

    /// <summary>Every trainable tensor by its file name (<c>&lt;module&gt;.lora_down.weight</c>, ...), in a fixed order.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() =>
        Modules.SelectMany(m => new[] { (m.Name + ".lora_down.weight", m.Down), (m.Name + ".lora_up.weight", m.Up) });

    /// <summary>
    /// Builds the modules for <paramref name="checkpoint"/> with kohya's initialisation (<c>lora_down</c> Kaiming-uniform
    /// with a = √5, i.e. U(−1/√in, 1/√in); <c>lora_up</c> zeros, so training starts from the base model), drawn from
    /// torch's CPU generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static LoraTrainingNetwork Create(StableDiffusionCheckpoint checkpoint, LoraNetworkOptions options, long seed)
    {
        if (options.Rank < 1) throw new ArgumentException("the LoRA rank must be at least 1");
        using var generator = new Generator((ulong)seed);
        var layers = new Dictionary<TrainableLoraModule, nn.Module<Tensor, Tensor>>();
        foreach (var target in Targets(checkpoint, options))
        {
            var weight = target.Layer.parameters().First();
            long outF = weight.shape[0], inF = weight.shape[1];
            long[] downShape = target.IsConvolution ? [options.Rank, inF, 1, 1] : [options.Rank, inF];
            long[] upShape = target.IsConvolution ? [outF, options.Rank, 1, 1] : [outF, options.Rank];
            double bound = 1.0 / Math.Sqrt(inF);
            using var uniform = rand(downShape, ScalarType.Float32, generator: generator);
            var down = new Parameter(uniform.mul(2 * bound).sub_(bound), requires_grad: true);
            var up = new Parameter(zeros(upShape, ScalarType.Float32), requires_grad: true);
            layers.Add(new TrainableLoraModule(target.Name, target.LayerPath, target.IsTextEncoder, target.IsConvolution, down, up, options.Alpha), target.Layer);
        }
        return new LoraTrainingNetwork(checkpoint, options, layers);
    }

    /// <summary>
    /// Loads the modules of a kohya LoRA file (every module the file has must fit a target of this checkpoint; targets
    /// the file lacks are not trained). Rank and alpha come from the file. The weights are held in
    /// <paramref name="dtype"/> (float32 for training; float64 for finite-difference checks).
    /// </summary>
    public static LoraTrainingNetwork Load(StableDiffusionCheckpoint checkpoint, IModelFile file, LoraNetworkOptions options, ScalarType dtype = ScalarType.Float32)
    {
        var byName = file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var layers = new Dictionary<TrainableLoraModule, nn.Module<Tensor, Tensor>>();
        int rank = 0;
        double alpha = 0;
        foreach (var target in Targets(checkpoint, options with { TrainUnet = true, TrainTextEncoder = true }))
        {
            if (!byName.TryGetValue(target.Name + ".lora_down.weight", out var downInfo)) continue;
            if (!byName.TryGetValue(target.Name + ".lora_up.weight", out var upInfo))
                throw new InvalidModelFileException(file.Path, $"{target.Name} has lora_down but no lora_up");
            var down = new Parameter(TensorReading.Read(file, downInfo, dtype), requires_grad: true);
            var up = new Parameter(TensorReading.Read(file, upInfo, dtype), requires_grad: true);
            double moduleAlpha = down.shape[0];
            if (byName.TryGetValue(target.Name + ".alpha", out var alphaInfo))
            {
                using var a = TensorReading.Read(file, alphaInfo, ScalarType.Float32);
                moduleAlpha = a.item<float>();
            }
            rank = (int)down.shape[0];
            alpha = moduleAlpha;
            layers.Add(new TrainableLoraModule(target.Name, target.LayerPath, target.IsTextEncoder, target.IsConvolution, down, up, moduleAlpha), target.Layer);
        }
        if (layers.Count == 0) throw new InvalidModelFileException(file.Path, "no kohya LoRA module of this file fits the model");
        return new LoraTrainingNetwork(checkpoint, options with { Rank = rank, Alpha = alpha }, layers);
    }

    private sealed record Target(string Name, string LayerPath, bool IsTextEncoder, bool IsConvolution, nn.Module<Tensor, Tensor> Layer);

    private static List<Target> Targets(StableDiffusionCheckpoint checkpoint, LoraNetworkOptions options)
    {
        var file = checkpoint.File;
        var textEncoder = new List<Target>();
        var unet = new List<Target>();
        if (options.TrainTextEncoder)
        {
            // kohya's text-encoder LoRA on a lone transformers CLIP (SD 1.x); other families' encoders are not wired yet.
            if (checkpoint.ClipL == null || checkpoint.Architecture.TextEncoders is not [{ Layout: TextEncoderLayout.HuggingFaceClip } slot])
                throw new InvalidModelFileException(file.Path, "text-encoder LoRA training supports SD 1.x checkpoints (CLIP-L); train the U-Net only (--train unet)");
            string prefix = slot.Prefix;
            var layers = NamedLayers(checkpoint.ClipL);
            foreach (var info in file.Tensors)
            {
                if (!info.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                string hf = info.Name[prefix.Length..];
                if (!TextEncoderTarget().IsMatch(hf)) continue;
                string path = hf[..^".weight".Length];
                textEncoder.Add(new Target(slot.KohyaPrefixes[0] + path.Replace('.', '_'), prefix + path, true, false, layers[path]));
            }
        }
        if (options.TrainUnet)
        {
            // SDXL's two encoders and size conditioning are not wired into the trainer yet.
            if (checkpoint.Architecture.TextEncoders.Count != 1)
                throw new InvalidModelFileException(file.Path, $"LoRA training supports SD 1.x and SD 2.x checkpoints, not {checkpoint.Architecture.DisplayName}");
            var layers = NamedLayers(checkpoint.UNet);
            var unetKeys = file.Tensors.Select(t => t.Name).Where(n => n.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)).ToList();
            var layout = UnetLayout.FromLdmKeys(unetKeys);
            foreach (var info in file.Tensors)
            {
                if (!info.Name.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal) || !info.Name.EndsWith(".weight", StringComparison.Ordinal)) continue;
                if (info.Shape.Length is not (2 or 4)) continue;
                if (info.Shape.Length == 4 && (info.Shape[2] != 1 || info.Shape[3] != 1)) continue; // 3x3 convs are LoCon's
                string? diffusers = UnetKeyNames.ToDiffusers(info.Name[LdmPrefixes.Unet.Length..], layout);
                if (diffusers == null || !diffusers.Contains(".attentions.", StringComparison.Ordinal)) continue;
                if (diffusers.EndsWith(".norm.weight", StringComparison.Ordinal)) continue;
                string path = info.Name[LdmPrefixes.Unet.Length..^".weight".Length];
                if (!layers.TryGetValue(path, out var layer)) continue; // norms
                unet.Add(new Target("lora_unet_" + diffusers[..^".weight".Length].Replace('.', '_'), LdmPrefixes.Unet + path, false, info.Shape.Length == 4, layer));
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
        _hooks = new LoraTrainingHooks(_layers.Select(p => (p.Value, p.Key)));
        _checkpoint.UNet.RecordsGradients = true;
    }

    /// <summary>Removes the branches: the model is the base model again.</summary>
    public void Detach()
    {
        _hooks?.Dispose();
        _hooks = null;
        _checkpoint.UNet.RecordsGradients = false;
    }

    /// <summary>The tensors of a kohya LoRA file: down/up per module and alpha as a 0-d tensor.</summary>
    public IEnumerable<TensorToWrite> FileTensors(TensorDType dtype) => Modules.SelectMany(m => new[]
    {
        FloatTensor(m.Name + ".lora_down.weight", m.Down, dtype),
        FloatTensor(m.Name + ".lora_up.weight", m.Up, dtype),
        new TensorToWrite(m.Name + ".alpha", dtype, [], s => s.Write(DTypeConversion.FromSingle([(float)m.Alpha], dtype))),
    });

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
