using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// LDM <c>AutoencoderKL</c> (names as under "first_stage_model."): encoder, decoder, quant_conv, post_quant_conv.
/// Latents handed to/from the diffusion model are scaled by <see cref="VaeConfig.ScaleFactor"/>.
/// </summary>
public sealed class AutoencoderKL : NamedModule
{
    private readonly VaeEncoder _encoder;
    private readonly VaeDecoder _decoder;
    private readonly Conv2d _quantConv, _postQuantConv;

    public AutoencoderKL(VaeConfig config, LayerFactory? factory = null) : base(nameof(AutoencoderKL))
    {
        Config = config;
        var f = factory ?? LayerFactory.Cpu();
        _encoder = Child("encoder", new VaeEncoder(f, config));
        _decoder = Child("decoder", new VaeDecoder(f, config));
        int moments = config.DoubleZ ? 2 * config.ZChannels : config.ZChannels;
        _quantConv = Child("quant_conv", f.Conv(moments, 2 * config.EmbedDim, 1));
        _postQuantConv = Child("post_quant_conv", f.Conv(config.EmbedDim, config.ZChannels, 1));
        FreezeParameters();
    }

    public VaeConfig Config { get; }

    public ScalarType DType => _postQuantConv.weight!.dtype;

    /// <summary>
    /// The posterior of an image batch [B, 3, H, W] in [-1, 1]: unscaled mean and logvar (clamped to [-30, 20]),
    /// float32, [B, embed_dim, H/f, W/f].
    /// </summary>
    public (Tensor Mean, Tensor LogVar) Encode(Tensor image)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var moments = _quantConv.forward(_encoder.Forward(image.to(DType))).to(ScalarType.Float32);
        var halves = moments.chunk(2, 1);
        var mean = halves[0].contiguous();
        var logvar = halves[1].clamp(-30.0, 20.0);
        return (mean.MoveToOuterDisposeScope(), logvar.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The posterior with gradients recorded (VAE training): unscaled mean and clamped logvar in the module's dtype.
    /// </summary>
    public (Tensor Mean, Tensor LogVar) EncodeWithGradients(Tensor image)
    {
        var moments = _quantConv.forward(_encoder.Forward(image.to(DType)));
        var halves = moments.chunk(2, 1);
        return (halves[0], halves[1].clamp(-30.0, 20.0));
    }

    /// <summary>decoder(post_quant_conv(z)) of an unscaled latent with gradients recorded (VAE training).</summary>
    public Tensor DecodeWithGradients(Tensor z) => _decoder.Forward(_postQuantConv.forward(z.to(DType)));

    /// <summary>Diffusion latents (scaled) from an image: scale_factor · posterior mean.</summary>
    public Tensor EncodeToLatents(Tensor image)
    {
        var (mean, logvar) = Encode(image);
        using (logvar)
        using (mean)
            return mean.mul(Config.ScaleFactor);
    }

    /// <summary>
    /// decoder(post_quant_conv(latents · (1/scale_factor))): raw image [B, 3, H·f, W·f] in about [-1, 1], float32.
    /// The reciprocal is taken in double and applied as one float32 multiplier, as upstream does.
    /// </summary>
    public Tensor Decode(Tensor latents)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var z = latents.to(ScalarType.Float32).mul(1.0 / Config.ScaleFactor).to(DType);
        var image = _decoder.Forward(_postQuantConv.forward(z)).to(ScalarType.Float32);
        return image.MoveToOuterDisposeScope();
    }
}
