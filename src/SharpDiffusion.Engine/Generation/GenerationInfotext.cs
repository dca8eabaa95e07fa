using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Engine.Generation;

/// <summary>The names and short hashes an infotext gives the model and its VAE (A1111's <c>Model</c>, <c>Model hash</c>, <c>VAE</c>, <c>VAE hash</c>).</summary>
public sealed record ModelIdentity(string Name, string? Hash, string? VaeName = null, string? VaeHash = null);

/// <summary>
/// The one place the PNG <c>parameters</c> text of a generated image is built: A1111's txt2img fields in A1111's
/// order, then <c>VAE hash</c>/<c>VAE</c>, <c>Denoising strength</c> (img2img), <c>RNG</c> (NV), then the extra
/// networks' fields (<c>Lora hashes</c>, <c>TI hashes</c>, <c>Hypernet</c>..., <c>Not applied</c>).
/// </summary>
public static class GenerationInfotext
{
    /// <param name="request">
    /// A request as <see cref="GenerationService.Normalize"/> returns it (the sampler's display name, the schedule it
    /// implies), with the prompt as the user wrote it (extra-network tags included, as A1111 keeps them).
    /// </param>
    public static A1111Infotext Build(GenerationRequest request, long seed, ModelIdentity model,
        IEnumerable<KeyValuePair<string, string>> extraNetworkFields)
    {
        var info = A1111Infotext.ForTxt2Img(request.Prompt, request.NegativePrompt, request.Steps, request.Sampler,
            SamplerRegistry.ScheduleLabel(request.Sampler, request.Schedule), request.CfgScale, seed, request.Width, request.Height, model.Hash, model.Name, request.ClipSkip);
        if (model.VaeName != null)
        {
            info["VAE hash"] = model.VaeHash;
            info["VAE"] = model.VaeName;
        }
        if (request.InitImage != null) info["Denoising strength"] = A1111Infotext.FormatNumber(request.Strength);
        if (request.HiresEnabled) info["Denoising strength"] = A1111Infotext.FormatNumber(request.HiresDenoise);
        foreach (var (key, value) in HiresFields(request)) info[key] = FormatValue(value);
        if (request.Mask != null)
            foreach (var (key, value) in MaskFields(request)) info[key] = FormatValue(value);
        if (request.Rng == NoiseSourceKind.Nv) info["RNG"] = "NV";
        foreach (var (key, value) in SamplerRegistry.ScheduleInfotextFields(request.Schedule)) info[key] = value;
        foreach (var (key, value) in extraNetworkFields) info[key] = value;
        // A1111 adds it after sampling, so after the fields the networks and ControlNet set before.
        if (request.TaesdDecoderPath != null) info["VAE Decoder"] = "TAESD";
        return info;
    }

    /// <summary>
    /// A1111's refiner fields (<c>Refiner: NAME [hash10]</c>, <c>Refiner switch at</c>), written only when the refiner took
    /// over; they follow the fields set before sampling (networks, ControlNet), as A1111 adds them at the switch.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string>> RefinerFields(ModelIdentity refiner, double switchAt)
    {
        yield return new("Refiner", refiner.Hash == null ? refiner.Name : $"{refiner.Name} [{refiner.Hash}]");
        yield return new("Refiner switch at", A1111Infotext.FormatNumber(switchAt));
    }

    /// <summary>
    /// A1111's fields of the hires. fix second pass, in its order (after "Denoising strength"), with typed values as its
    /// <c>extra_generation_params</c> holds them (numbers as numbers): the PNG's parameters and the API's info both come
    /// from here. None without a second pass.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, object>> HiresFields(GenerationRequest request)
    {
        if (!request.HiresEnabled) yield break;
        if (request.HiresSampler is { } hiresSampler && hiresSampler != request.Sampler) yield return new("Hires sampler", hiresSampler);
        if (request.HiresPrompt is { } hiresPrompt && hiresPrompt != request.Prompt) yield return new("Hires prompt", hiresPrompt);
        if (request.HiresNegativePrompt is { } hiresNegative && hiresNegative != request.NegativePrompt) yield return new("Hires negative prompt", hiresNegative);
        string? hiresScheduleLabel = request.HiresSampler == null && request.HiresSchedule == null ? null
            : SamplerRegistry.ScheduleLabel(request.HiresSampler ?? request.Sampler, request.HiresSchedule ?? request.Schedule);
        if (hiresScheduleLabel != null && hiresScheduleLabel != SamplerRegistry.ScheduleLabel(request.Sampler, request.Schedule))
            yield return new("Hires schedule type", hiresScheduleLabel);
        // A1111 writes the resize as asked (0 for a side left to the aspect ratio), else the scale.
        if (request.HiresResize is { } resize && (resize.Width != 0 || resize.Height != 0))
            yield return new("Hires resize", $"{resize.Width}x{resize.Height}");
        else yield return new("Hires upscale", request.HiresScale ?? 2);
        if (request.HiresSteps is { } hiresSteps) yield return new("Hires steps", hiresSteps);
        yield return new("Hires upscaler", request.HiresUpscaler);
    }

    /// <summary>A1111's inpainting fields (img2img <c>init()</c> order), typed as <see cref="HiresFields"/>; for a request with a mask.</summary>
    public static IEnumerable<KeyValuePair<string, object>> MaskFields(GenerationRequest request)
    {
        if (request.MaskInvert) yield return new("Mask mode", "Inpaint not masked");
        // A1111's mask_blur property is None (no field) when the two directions differ.
        if (request.MaskBlur > 0 && (request.MaskBlurY ?? request.MaskBlur) == request.MaskBlur) yield return new("Mask blur", request.MaskBlur);
        if (request.InpaintFullRes)
        {
            yield return new("Inpaint area", "Only masked");
            yield return new("Masked area padding", request.InpaintFullResPadding);
        }
        if (request.InpaintFill != InpaintFill.Original)
            yield return new("Masked content", request.InpaintFill switch { InpaintFill.Fill => "fill", InpaintFill.LatentNoise => "latent noise", _ => "latent nothing" });
    }

    private static string FormatValue(object value) => value switch
    {
        double d => A1111Infotext.FormatNumber(d),
        int i => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => (string)value,
    };

    /// <summary>
    /// sd-webui-controlnet's fields, one per unit: <c>ControlNet N: "Module: canny, Model: NAME [hash8], Weight: 1, ..."</c>
    /// (the model's file name without extension and the first 8 hex digits of its sha256, as the extension lists models).
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string>> ControlNetFields(IReadOnlyList<ControlNet.ControlUnit> units, IReadOnlyList<string?> shortHashes)
    {
        for (int i = 0; i < units.Count; i++)
        {
            var unit = units[i];
            var name = Path.GetFileNameWithoutExtension(unit.ModelPath.TrimEnd('/', Path.DirectorySeparatorChar));
            var model = shortHashes[i] is { } hash ? $"{name} [{hash}]" : name;
            var fields = new List<string>
            {
                $"Module: {unit.Module}",
                $"Model: {model}",
                $"Weight: {A1111Infotext.FormatNumber(unit.Weight)}",
                $"Resize Mode: {ControlNet.ControlMapResize.InfotextName(unit.ResizeMode)}",
            };
            if (unit.Module == "canny")
            {
                fields.Add($"Threshold A: {unit.ThresholdA}");
                fields.Add($"Threshold B: {unit.ThresholdB}");
            }
            fields.Add($"Guidance Start: {A1111Infotext.FormatNumber(unit.GuidanceStart)}");
            fields.Add($"Guidance End: {A1111Infotext.FormatNumber(unit.GuidanceEnd)}");
            fields.Add("Pixel Perfect: False");
            fields.Add("Control Mode: Balanced");
            // Quoted as one value by the infotext writer (A1111's quote: it holds commas and colons).
            yield return new($"ControlNet {i}", string.Join(", ", fields));
        }
    }
}
