using System.Globalization;
using System.Text.RegularExpressions;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>Which naming a ControlNet file uses.</summary>
public enum ControlNetLayout
{
    /// <summary>lllyasviel's single file: <c>control_model.input_blocks...</c>, <c>zero_convs</c>, <c>input_hint_block</c> (prefix optional).</summary>
    Original,

    /// <summary>diffusers' <c>ControlNetModel</c>: <c>down_blocks</c>, <c>controlnet_down_blocks</c>, <c>controlnet_cond_embedding</c>.</summary>
    Diffusers,
}

/// <summary>
/// Loads a ControlNet for a given base U-Net, strictly (every tensor used, none missing). The encoder must be the
/// base U-Net's (model channels, levels, context width); heads come from the base config, which the weights cannot
/// show. Accepts the original single-file layout (.pth/.safetensors, with or without <c>control_model.</c>) and the
/// diffusers layout (a component folder, a pipeline's <c>controlnet/</c>, or its weight file alone).
/// </summary>
public static class ControlNetLoader
{
    public const string OriginalPrefix = "control_model.";

    /// <summary>Not a ControlNet, or one for another base model: <see cref="InvalidModelFileException"/> (one line).</summary>
    public static LoadedControlNet Load(string path, UNetConfig baseConfig, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        using var file = ModelFileReader.Open(path);
        var (layout, tensors) = MapKeys(file);
        var config = ConfigFor(path, tensors, baseConfig);
        var hintChannels = HintChannels(path, tensors);
        var model = new ControlNetModel(config, hintChannels, LayerFactory.ForLoading(device ?? CPU, dtype));
        try
        {
            MappedStrictLoader.Load(model, file, tensors, $"a ControlNet for this U-Net ({config.ModelChannels} channels, mult [{string.Join(", ", config.ChannelMult)}])");
        }
        catch (ModelLoadException e)
        {
            model.Dispose();
            throw new InvalidModelFileException(path, e.Message, e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new LoadedControlNet(model, layout, path);
    }

    /// <summary>The layout and every tensor under its original (LDM) name without prefix.</summary>
    public static (ControlNetLayout Layout, Dictionary<string, TensorInfo> Tensors) MapKeys(IModelFile file)
    {
        var names = ComponentKeys(file);
        if (names.Keys.Any(k => k.StartsWith(OriginalPrefix, StringComparison.Ordinal)))
        {
            var stripped = names.Where(n => n.Key.StartsWith(OriginalPrefix, StringComparison.Ordinal))
                .ToDictionary(n => n.Key[OriginalPrefix.Length..], n => n.Value, StringComparer.Ordinal);
            var foreign = names.Keys.Where(k => !k.StartsWith(OriginalPrefix, StringComparison.Ordinal)).ToList();
            if (foreign.Count > 0 && !foreign.All(k => k.StartsWith("model.diffusion_model.", StringComparison.Ordinal) || k.StartsWith("cond_stage_model.", StringComparison.Ordinal) || k.StartsWith("first_stage_model.", StringComparison.Ordinal)))
                throw new InvalidModelFileException(file.Path, $"ControlNet file with unexpected tensors outside {OriginalPrefix}: {string.Join(", ", foreign.Take(4))}");
            return (ControlNetLayout.Original, RequireHint(file, stripped));
        }
        if (names.ContainsKey("input_hint_block.0.weight")) return (ControlNetLayout.Original, names);
        if (names.ContainsKey("controlnet_cond_embedding.conv_in.weight")) return (ControlNetLayout.Diffusers, FromDiffusers(file, names));
        throw new InvalidModelFileException(file.Path, "not a ControlNet (no control_model.input_hint_block, input_hint_block or controlnet_cond_embedding weights)");
    }

    private static Dictionary<string, TensorInfo> RequireHint(IModelFile file, Dictionary<string, TensorInfo> names) =>
        names.ContainsKey("input_hint_block.0.weight") ? names
            : throw new InvalidModelFileException(file.Path, "not a ControlNet: control_model.* without an input_hint_block (a T2I-adapter or a ControlNet LoRA is not supported)");

    /// <summary>A diffusers folder names tensors "component/key": take the controlnet component (or the only one).</summary>
    private static Dictionary<string, TensorInfo> ComponentKeys(IModelFile file)
    {
        if (!file.Tensors.All(t => t.Name.Contains('/')))
            return file.Tensors.ToDictionary(t => t.Name, t => t, StringComparer.Ordinal);
        var components = file.Tensors.Select(t => t.Name[..t.Name.IndexOf('/')]).Distinct(StringComparer.Ordinal).ToList();
        string component = components.Contains("controlnet") ? "controlnet" : components.Count == 1 ? components[0]
            : throw new InvalidModelFileException(file.Path, $"diffusers folder without a controlnet component (has {string.Join(", ", components)})");
        return file.Tensors.Where(t => t.Name.StartsWith(component + "/", StringComparison.Ordinal))
            .ToDictionary(t => t.Name[(component.Length + 1)..], t => t, StringComparer.Ordinal);
    }

    private static readonly Regex HintBlockKey = new(@"^controlnet_cond_embedding\.blocks\.(\d+)\.(.+)$", RegexOptions.CultureInvariant);
    private static readonly Regex ZeroConvKey = new(@"^controlnet_down_blocks\.(\d+)\.(.+)$", RegexOptions.CultureInvariant);

    /// <summary>
    /// diffusers' names back to the original ones (the inverse of diffusers' convert_controlnet_checkpoint): the
    /// encoder as a U-Net's (<see cref="UnetKeyNames"/>), <c>controlnet_down_blocks.i</c> = <c>zero_convs.i.0</c>,
    /// <c>controlnet_mid_block</c> = <c>middle_block_out.0</c>, and the conditioning embedding = <c>input_hint_block</c>
    /// (conv_in 0, blocks.j 2(j+1), conv_out after the last block).
    /// </summary>
    private static Dictionary<string, TensorInfo> FromDiffusers(IModelFile file, Dictionary<string, TensorInfo> names)
    {
        var layout = UnetLayout.FromDiffusersKeys(names.Keys);
        int hintBlocks = names.Keys.Select(k => HintBlockKey.Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1).DefaultIfEmpty(0).Max();
        var mapped = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var (key, info) in names)
        {
            string? ldm;
            Match m;
            if (key.StartsWith("controlnet_cond_embedding.conv_in.", StringComparison.Ordinal)) ldm = "input_hint_block.0." + key["controlnet_cond_embedding.conv_in.".Length..];
            else if (key.StartsWith("controlnet_cond_embedding.conv_out.", StringComparison.Ordinal)) ldm = $"input_hint_block.{2 * (hintBlocks + 1)}." + key["controlnet_cond_embedding.conv_out.".Length..];
            else if ((m = HintBlockKey.Match(key)).Success) ldm = $"input_hint_block.{2 * (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1)}.{m.Groups[2].Value}";
            else if ((m = ZeroConvKey.Match(key)).Success) ldm = $"zero_convs.{m.Groups[1].Value}.0.{m.Groups[2].Value}";
            else if (key.StartsWith("controlnet_mid_block.", StringComparison.Ordinal)) ldm = "middle_block_out.0." + key["controlnet_mid_block.".Length..];
            else ldm = UnetKeyNames.ToLdm(key, layout);
            if (ldm == null) throw new InvalidModelFileException(file.Path, $"unexpected tensor '{info.Name}' in a diffusers ControlNet");
            if (!mapped.TryAdd(ldm, info)) throw new InvalidModelFileException(file.Path, $"tensors '{mapped[ldm].Name}' and '{info.Name}' map to the same weight {ldm}");
        }
        return mapped;
    }

    /// <summary>The base U-Net's architecture with the ControlNet's input channels; refuses a ControlNet made for another model family.</summary>
    private static UNetConfig ConfigFor(string path, Dictionary<string, TensorInfo> tensors, UNetConfig baseConfig)
    {
        if (baseConfig.AdmInChannels != null || tensors.ContainsKey("label_emb.0.0.weight"))
            throw new InvalidModelFileException(path, "SDXL ControlNets (and models with a vector conditioning) are not supported: SD1/SD2 ControlNets only");
        if (!tensors.TryGetValue("input_blocks.0.0.weight", out var convIn) || convIn.Rank != 4)
            throw new InvalidModelFileException(path, "ControlNet without a 4-d input_blocks.0.0.weight (conv_in)");
        var toK = tensors.Where(t => t.Key.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal)).Select(t => t.Value).FirstOrDefault();
        int channels = (int)convIn.Shape[0];
        int context = toK != null ? (int)toK.Shape[1] : baseConfig.ContextDim;
        if (channels != baseConfig.ModelChannels || context != baseConfig.ContextDim)
        {
            throw new InvalidModelFileException(path,
                $"ControlNet for another base model: {channels} model channels and {context}-wide text context, this model's U-Net has {baseConfig.ModelChannels} and {baseConfig.ContextDim}"
                + (context == 2048 ? " (an SDXL ControlNet)" : context == 768 ? " (an SD1 ControlNet)" : context == 1024 ? " (an SD2 ControlNet)" : ""));
        }
        return baseConfig with { InChannels = (int)convIn.Shape[1] };
    }

    /// <summary>input_hint_block.0, .2, ...: image channels then each conv's outputs.</summary>
    private static IReadOnlyList<int> HintChannels(string path, Dictionary<string, TensorInfo> tensors)
    {
        var channels = new List<int>();
        for (int index = 0; tensors.TryGetValue($"input_hint_block.{index}.weight", out var conv); index += 2)
        {
            if (conv.Rank != 4) throw new InvalidModelFileException(path, $"input_hint_block.{index}.weight is not a convolution ({conv.ShapeText})");
            if (channels.Count == 0) channels.Add((int)conv.Shape[1]);
            channels.Add((int)conv.Shape[0]);
        }
        return channels;
    }
}
