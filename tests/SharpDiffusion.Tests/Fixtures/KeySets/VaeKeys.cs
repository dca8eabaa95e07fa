using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// The KL-f8 autoencoder in LDM names, taken from the SD1.5 reference inventory (the SD1/SD2/SDXL VAEs share this
/// architecture), and its 16-channel SD3/Flux form (wider latent stems, no quant convs).
/// </summary>
public static class VaeKeys
{
    private const string SingleFilePrefix = "first_stage_model.";

    public static List<KeyEntry> Ldm(string prefix = SingleFilePrefix, TensorDType dtype = TensorDType.F32) =>
        ReferenceTsv.Load("sd15_single_file.tsv")
            .Where(e => e.Name.StartsWith(SingleFilePrefix, StringComparison.Ordinal))
            .Select(e => e with { Name = prefix + e.Name[SingleFilePrefix.Length..], DType = dtype })
            .ToList();

    public static List<KeyEntry> Ldm16Channel(string prefix = SingleFilePrefix, TensorDType dtype = TensorDType.F32) =>
        Ldm(prefix, dtype)
            .Where(e => !e.Name.Contains("quant_conv", StringComparison.Ordinal))
            .Select(e => e.Name[prefix.Length..] switch
            {
                "encoder.conv_out.weight" => e with { Shape = new long[] { 32, 512, 3, 3 } },
                "encoder.conv_out.bias" => e with { Shape = new long[] { 32 } },
                "decoder.conv_in.weight" => e with { Shape = new long[] { 512, 16, 3, 3 } },
                _ => e,
            })
            .ToList();

    /// <summary>The diffusers-layout SD1.5 VAE (reference inventory), under <paramref name="prefix"/>.</summary>
    public static List<KeyEntry> Diffusers(string prefix = "") => ReferenceTsv.Prefixed("sd15_diffusers_vae.tsv", prefix).ToList();
}
