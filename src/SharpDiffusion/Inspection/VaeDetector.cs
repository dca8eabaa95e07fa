using SharpDiffusion.Architectures;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>A VAE found in a file: latent channels, layout and the key that showed it.</summary>
internal sealed record VaeFacts(string Prefix, int LatentChannels, string Layout, TensorInfo Key)
{
    /// <summary>4-channel KL-f8 VAEs share one architecture across SD1/SD2/SDXL; 16 channels is the SD3/Flux VAE.</summary>
    public List<BaseFamily> CompatibleBases => ModelArchitectures.FamiliesWithLatentChannels(LatentChannels).ToList();

    public string Describe()
    {
        var families = CompatibleBases;
        string which = families.Count switch
        {
            0 => "",
            1 => $" ({families[0].DisplayName()})",
            _ => $": the same architecture serves {string.Join(", ", families.Select(f => f.DisplayName()))}, so the weights cannot tell the family",
        };
        return Evidence.Key(Key, $"{Layout} VAE with {LatentChannels} latent channels{which}");
    }
}

/// <summary>Recognises an autoencoder (LDM <c>encoder.down.N</c> or diffusers <c>encoder.down_blocks.N</c>) by its conv stems.</summary>
internal static class VaeDetector
{
    public static VaeFacts? At(TensorIndex index, string prefix)
    {
        var decoderIn = index.Get(prefix + "decoder.conv_in.weight");
        var encoderOut = index.Get(prefix + "encoder.conv_out.weight");
        if (decoderIn is not { Rank: 4 } && encoderOut is not { Rank: 4 }) return null;
        if (!index.Has(prefix + "decoder.conv_out.weight") && !index.Has(prefix + "encoder.conv_in.weight")) return null;

        string layout = index.AnyWithPrefix(prefix + "decoder.up_blocks.") || index.AnyWithPrefix(prefix + "encoder.down_blocks.")
            ? "diffusers-layout" : "LDM-layout";
        if (decoderIn is { Rank: 4 }) return new VaeFacts(prefix, (int)decoderIn.Shape[1], layout, decoderIn);
        // Encoder-only: conv_out emits mean and log-variance, twice the latent channels.
        return new VaeFacts(prefix, (int)encoderOut!.Shape[0] / 2, layout, encoderOut);
    }
}
