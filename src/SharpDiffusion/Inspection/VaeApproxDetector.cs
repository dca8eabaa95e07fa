using SharpDiffusion.Architectures;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// TAESD, the tiny autoencoder A1111 and ComfyUI use for live previews and fast decoding (A1111's
/// <c>models/VAE-approx/</c>): an <c>nn.Sequential</c> state dict whose keys are layer indices. Decoder: Clamp, then
/// conv(latent, 64) as <c>1.weight</c>, residual blocks <c>N.conv.0/2/4.weight</c>, a last conv(64, 3). Encoder:
/// conv(3, 64) as <c>0.weight</c>, blocks, a last conv(64, latent). The latent channels give the compatible families
/// (TAESD and TAESDXL share one architecture, so 4 channels cannot tell SD1 from SDXL).
/// </summary>
internal static class VaeApproxDetector
{
    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        if (!index.Tensors.All(t => t.Name.Length > 0 && char.IsAsciiDigit(t.Name[0]))) return false;
        var block = index.FirstContaining(".conv.0.weight");
        if (block is not { Rank: 4 }) return false;
        var last = index.Tensors.Where(t => t.Rank == 4 && t.Name.EndsWith(".weight", StringComparison.Ordinal))
            .MaxBy(t => LayerIndex(t.Name));
        if (last == null) return false;

        TensorInfo first;
        string role;
        int latentChannels;
        if (index.Get("1.weight") is { Rank: 4 } decoderIn && index.Get("0.weight") == null && last.Shape[0] == 3)
        {
            (first, role, latentChannels) = (decoderIn, "decoder", (int)decoderIn.Shape[1]);
        }
        else if (index.Get("0.weight") is { Rank: 4 } encoderIn && encoderIn.Shape[1] == 3)
        {
            (first, role, latentChannels) = (encoderIn, "encoder", (int)last.Shape[0]);
        }
        else
        {
            return false;
        }

        result.Kind = ModelKind.VaeApprox;
        result.Variant = "taesd " + role;
        result.Components.Add("vae");
        result.CompatibleBases.AddRange(ModelArchitectures.FamiliesWithLatentChannels(latentChannels));
        Evidence.Add(result, Evidence.Key(first, role == "decoder"
            ? $"first conv of a TAESD decoder: {latentChannels} latent channels in (after the clamp at index 0)"
            : $"first conv of a TAESD encoder: RGB in"));
        Evidence.Add(result, Evidence.Key(block, "TAESD residual block (conv.0/2/4)"));
        Evidence.Add(result, Evidence.Key(last, role == "decoder" ? "last conv: RGB out" : $"last conv: {latentChannels} latent channels out"));
        if (result.CompatibleBases.Count > 0)
            Evidence.Add(result, $"{latentChannels}-channel latents: serves {string.Join(", ", result.CompatibleBases.Select(Evidence.Family))} (TAESD and TAESDXL share one layout)");
        return true;
    }

    private static int LayerIndex(string name) =>
        int.TryParse(name.AsSpan(0, name.IndexOf('.') is var dot && dot > 0 ? dot : name.Length), out int i) ? i : -1;
}
