using SharpDiffusion.Architectures;
using System.Text.RegularExpressions;
using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>
/// The layers kohya's <c>networks/lora.py</c> LoRANetwork wraps in an SD 1.x checkpoint, with its module names:
/// every Linear / Conv2d inside a Transformer2DModel of the U-Net (proj_in, proj_out, attn1/attn2 to_q/to_k/to_v/to_out.0,
/// ff.net.0.proj, ff.net.2), the CLIP text encoder's self_attn q/k/v/out_proj and mlp fc1/fc2, and with a conv rank
/// (LoCon) also every layer of ResnetBlock2D / Downsample2D / Upsample2D (conv1, conv2, time_emb_proj, conv_shortcut,
/// downsamplers/upsamplers conv). Names are <c>lora_unet_</c> + the diffusers path and <c>lora_te_</c> + the
/// transformers path, with '.' replaced by '_' — the names A1111 and <see cref="NetworkKeyResolver"/> both accept.
/// </summary>
public static partial class ExtractionTargets
{
    [GeneratedRegex(@"^text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$")]
    private static partial Regex TextEncoderTarget();

    /// <summary>Lists the targets of an SD 1.x single-file checkpoint in file order (text encoder first, as kohya does).</summary>
    /// <exception cref="InvalidModelFileException">The file is not an SD 1.x LDM checkpoint.</exception>
    public static IReadOnlyList<ExtractionTarget> ForSd1Checkpoint(IModelFile file, bool includeConvLayers)
    {
        RequireSd1(file);
        var unetKeys = file.Tensors.Select(t => t.Name).Where(n => n.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)).ToList();
        var layout = UnetLayout.FromLdmKeys(unetKeys);
        var textEncoder = new List<ExtractionTarget>();
        var unet = new List<ExtractionTarget>();
        foreach (var info in file.Tensors)
        {
            if (info.Shape.Length is not (2 or 4)) continue; // norms and biases are never wrapped
            string key = info.Name;
            if (key.StartsWith(ModelArchitectures.Sd1.TextEncoders[0].Prefix, StringComparison.Ordinal))
            {
                string hf = key[ModelArchitectures.Sd1.TextEncoders[0].Prefix.Length..];
                if (TextEncoderTarget().IsMatch(hf)) textEncoder.Add(new ExtractionTarget("lora_te_" + ModulePath(hf), key, true, false));
            }
            else if (key.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal) && key.EndsWith(".weight", StringComparison.Ordinal))
            {
                string? diffusers = UnetKeyNames.ToDiffusers(key[LdmPrefixes.Unet.Length..], layout);
                if (diffusers == null) continue;
                bool transformer = diffusers.Contains(".attentions.", StringComparison.Ordinal);
                bool convBlock = diffusers.Contains(".resnets.", StringComparison.Ordinal)
                    || diffusers.Contains(".downsamplers.", StringComparison.Ordinal)
                    || diffusers.Contains(".upsamplers.", StringComparison.Ordinal);
                if (!transformer && !(convBlock && includeConvLayers)) continue;
                bool conv3x3 = info.Shape.Length == 4 && (info.Shape[2] != 1 || info.Shape[3] != 1);
                unet.Add(new ExtractionTarget("lora_unet_" + ModulePath(diffusers), key, false, conv3x3));
            }
        }
        return [.. textEncoder, .. unet];
    }

    /// <summary>Refuses anything but an SD 1.x LDM checkpoint (U-Net under model.diffusion_model., CLIP under cond_stage_model.transformer.).</summary>
    public static void RequireSd1(IModelFile file)
    {
        bool Has(string prefix) => file.Tensors.Any(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));
        if (Has("conditioner.embedders.")) throw new InvalidModelFileException(file.Path, "is an SDXL checkpoint; LoRA extraction supports SD 1.x single-file checkpoints only");
        if (Has(ModelArchitectures.Sd2.TextEncoders[0].Prefix)) throw new InvalidModelFileException(file.Path, "is an SD 2.x checkpoint (OpenCLIP text encoder); LoRA extraction supports SD 1.x single-file checkpoints only");
        if (!Has(LdmPrefixes.Unet) || !Has(ModelArchitectures.Sd1.TextEncoders[0].Prefix + "text_model."))
            throw new InvalidModelFileException(file.Path, "is not an SD 1.x single-file checkpoint (needs model.diffusion_model.* and cond_stage_model.transformer.text_model.* tensors)");
    }

    private static string ModulePath(string weightKey) => weightKey[..^".weight".Length].Replace('.', '_');
}
