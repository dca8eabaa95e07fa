using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Workshop;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>One network to bake in, with A1111's split strengths.</summary>
public sealed record BakeNetwork(string Path, double TextEncoderStrength, double UnetStrength);

/// <summary>What a bake wrote.</summary>
public sealed record BakeResult(int Tensors, int PatchedTensors, int VaeTensors, IReadOnlyList<string> Warnings);

/// <summary>
/// Writes a new checkpoint with networks merged into its weights and optionally another VAE: the same resolution and
/// weight math as at generation time (so baking then generating equals generating with the networks applied on the
/// fly), streamed tensor by tensor to a temp file that is renamed at the end. The inputs are never modified.
/// </summary>
public static class CheckpointBaker
{
    public static BakeResult Bake(string modelPath, IReadOnlyList<BakeNetwork> networks, string? vaePath, string outputPath,
        IProgress<long>? progress = null)
    {
        OutputGuard.Check(outputPath, [modelPath, vaePath, .. networks.Select(n => n.Path)]);
        using var model = CheckpointFiles.Open(modelPath);
        CheckpointArchitectureDetection.Detect(model);
        var resolver = NetworkKeyResolver.ForModel(model.Tensors.Select(t => t.Name));
        var warnings = new List<string>();
        var opened = new List<IDisposable>();
        try
        {
            var patches = new Dictionary<string, List<(NetworkModuleWeights Module, double Strength, bool Bias)>>(StringComparer.Ordinal);
            foreach (var network in networks)
            {
                var file = ModelFileReader.Open(network.Path);
                opened.Add(file);
                var resolution = resolver.Resolve(file.Tensors.Select(t => t.Name));
                if (resolution.Modules.Count == 0)
                {
                    warnings.Add($"{network.Path}: no module matches this checkpoint (a network for another family?); not baked");
                    continue;
                }
                if (resolution.Unused.Count > 0)
                    warnings.Add($"{network.Path}: {resolution.Unused.Count} key(s) match nothing in this checkpoint, e.g. {resolution.Unused[0]}");
                foreach (var module in NetworkModuleWeights.LoadAll(file, resolution))
                {
                    opened.Add(module);
                    double strength = module.Target.IsTextEncoder ? network.TextEncoderStrength : network.UnetStrength;
                    Add(patches, module.Target.WeightKey, (module, strength, false));
                    if (module.Target.BiasKey is { } bias && (module["diff_b"] ?? module["b_norm"]) is not null)
                        Add(patches, bias, (module, strength, true));
                }
            }

            var vae = vaePath == null ? null : CheckpointFiles.Open(vaePath);
            if (vae != null) opened.Add(vae);
            var vaeTensors = vae == null ? new Dictionary<string, TensorInfo>() : VaeKeys.Map(vae);

            int patched = 0, fromVae = 0;
            var tensors = model.Tensors.Select(t =>
            {
                if (vaeTensors.TryGetValue(t.Name, out var v))
                {
                    if (!v.Shape.SequenceEqual(t.Shape))
                        throw new InvalidModelFileException(vaePath!, $"'{v.Name}' is {v.ShapeText}, the checkpoint's '{t.Name}' is {t.ShapeText}: not a VAE for this model");
                    fromVae++;
                    return new TensorToWrite(t.Name, t.DType, t.Shape, stream => WriteConverted(vae!, v, t.DType, stream));
                }
                if (patches.TryGetValue(t.Name, out var list))
                {
                    patched++;
                    return new TensorToWrite(t.Name, t.DType, t.Shape, stream => WritePatched(model, t, list, stream));
                }
                return TensorToWrite.FromModelFile(model, t);
            }).ToList();
            if (vae != null && fromVae == 0) throw new InvalidModelFileException(vaePath!, "no tensor of this file is a VAE weight of the checkpoint");

            // Only a safetensors file's metadata is metadata (a pickle's scalars and a folder's configs are not).
            var metadata = new Dictionary<string, string>(model.Format == ModelFormat.Safetensors ? model.Metadata : new Dictionary<string, string>(), StringComparer.Ordinal)
            {
                ["sharpdiffusion_bake"] = System.Text.Json.JsonSerializer.Serialize(new
                {
                    model = Path.GetFileName(modelPath),
                    networks = networks.Select(n => new { file = Path.GetFileName(n.Path), te = n.TextEncoderStrength, unet = n.UnetStrength }),
                    vae = vaePath == null ? null : Path.GetFileName(vaePath),
                }),
            };
            SafetensorsWriter.Write(outputPath, tensors, metadata, progress);
            return new BakeResult(tensors.Count, patched, fromVae, warnings);
        }
        finally
        {
            foreach (var d in opened) d.Dispose();
        }
    }

    private static void Add(Dictionary<string, List<(NetworkModuleWeights, double, bool)>> patches, string key, (NetworkModuleWeights, double, bool) patch)
    {
        if (!patches.TryGetValue(key, out var list)) patches[key] = list = new();
        list.Add(patch);
    }

    /// <summary>The modules applied in order on the stored tensor, exactly as <see cref="NetworkPatcher"/> does on live weights.</summary>
    private static void WritePatched(IModelFile model, TensorInfo info, List<(NetworkModuleWeights Module, double Strength, bool Bias)> patches, Stream stream)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weight = TensorReading.Read(model, info);
        foreach (var (module, strength, bias) in patches)
        {
            var target = module.Target;
            long rows = weight.shape[0] / target.SliceCount;
            var view = target.SliceCount == 1 ? weight.alias() : weight.narrow(0, target.SliceIndex * rows, rows);
            if (bias) view.copy_(NetworkWeightMath.PatchedBias(module, view, strength)!);
            else NetworkWeightMath.AddInPlace(module, view, strength);
        }
        stream.Write(weight.contiguous().bytes);
    }

    private static void WriteConverted(IModelFile file, TensorInfo source, TensorDType dtype, Stream stream)
    {
        var bytes = new byte[source.ByteLength];
        file.ReadTensorData(source, bytes);
        if (source.DType == dtype)
        {
            stream.Write(bytes);
            return;
        }
        stream.Write(DTypeConversion.FromSingle(DTypeConversion.ToSingle(bytes, source.DType), dtype));
    }
}
