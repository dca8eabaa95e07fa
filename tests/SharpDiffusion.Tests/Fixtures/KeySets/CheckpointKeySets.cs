using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// Whole-model key sets assembled from the generators: single-file SD1.5 / SD2 / SDXL / SDXL refiner checkpoints
/// (with optional EMA copies and inpaint / instruct-pix2pix input convs), the SD1.5 diffusers folder, and SD3/Flux
/// denoisers for the MMDiT families.
/// </summary>
public static class CheckpointKeySets
{
    public const string Unet = "model.diffusion_model.";

    private static readonly string[] DdpmBuffers =
    {
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    };

    public static IEnumerable<KeyEntry> Buffers() => DdpmBuffers.Select(b => new KeyEntry(b, TensorDType.F32, new long[] { 1000 }));

    /// <summary>SD1.5 single file (v1-5-pruned-emaonly layout): exactly the reference inventory when dtype is F32.</summary>
    public static List<KeyEntry> SD15(TensorDType dtype = TensorDType.F32, int inChannels = 4) =>
        Buffers()
            .Concat(LdmUnetKeys.Generate(LdmUnetConfig.SD15 with { InChannels = inChannels }, Unet, dtype))
            .Concat(VaeKeys.Ldm("first_stage_model.", dtype))
            .Concat(TextEncoderKeys.ClipL("cond_stage_model.transformer.text_model.", dtype))
            .ToList();

    public static List<KeyEntry> SD2(TensorDType dtype = TensorDType.F32, int inChannels = 4) =>
        Buffers()
            .Concat(LdmUnetKeys.Generate(LdmUnetConfig.SD2 with { InChannels = inChannels }, Unet, dtype))
            .Concat(VaeKeys.Ldm("first_stage_model.", dtype))
            .Concat(TextEncoderKeys.OpenClipH("cond_stage_model.model.", dtype))
            .ToList();

    public static List<KeyEntry> SDXL(TensorDType dtype = TensorDType.F16, int inChannels = 4) =>
        LdmUnetKeys.Generate(LdmUnetConfig.SDXL with { InChannels = inChannels }, Unet, dtype)
            .Concat(TextEncoderKeys.ClipL("conditioner.embedders.0.transformer.text_model.", dtype))
            .Concat(TextEncoderKeys.OpenClipBigG("conditioner.embedders.1.model.", dtype))
            .Concat(VaeKeys.Ldm("first_stage_model.", dtype))
            .ToList();

    public static List<KeyEntry> SDXLRefiner(TensorDType dtype = TensorDType.F16) =>
        LdmUnetKeys.Generate(LdmUnetConfig.SDXLRefiner, Unet, dtype)
            .Concat(TextEncoderKeys.OpenClipBigG("conditioner.embedders.0.model.", dtype))
            .Concat(VaeKeys.Ldm("first_stage_model.", dtype))
            .ToList();

    /// <summary>
    /// Adds LitEma copies of every U-Net parameter as real EMA checkpoints store them: <c>model_ema.</c> + the
    /// parameter path with the dots removed (<c>model_ema.diffusion_modelinput_blocks00weight</c>), plus the
    /// <c>decay</c> and <c>num_updates</c> buffers.
    /// </summary>
    public static List<KeyEntry> WithEma(List<KeyEntry> checkpoint)
    {
        var ema = checkpoint.Where(e => e.Name.StartsWith(Unet, StringComparison.Ordinal))
            .Select(e => e with { Name = "model_ema." + e.Name["model.".Length..].Replace(".", "", StringComparison.Ordinal) })
            .ToList();
        return checkpoint
            .Append(new KeyEntry("model_ema.decay", TensorDType.F32, Array.Empty<long>()))
            .Append(new KeyEntry("model_ema.num_updates", TensorDType.I32, Array.Empty<long>()))
            .Concat(ema).ToList();
    }

    /// <summary>The SD1.5 diffusers folder as one model: <c>&lt;component&gt;/&lt;key&gt;</c> names.</summary>
    public static List<KeyEntry> SD15Diffusers() =>
        ReferenceTsv.Prefixed("sd15_diffusers_unet.tsv", "unet/")
            .Concat(ReferenceTsv.Prefixed("sd15_diffusers_vae.tsv", "vae/"))
            .Concat(ReferenceTsv.Prefixed("sd15_diffusers_text_encoder.tsv", "text_encoder/"))
            .ToList();

    /// <summary>Flux-style denoiser: double-stream and single-stream blocks (representative subset of each block).</summary>
    public static List<KeyEntry> FluxTransformer(string prefix = "", TensorDType dtype = TensorDType.BF16, int doubleBlocks = 19, int singleBlocks = 38)
    {
        var keys = new List<KeyEntry>();
        void Add(string name, params long[] shape) => keys.Add(new KeyEntry(prefix + name, dtype, shape));
        const int hidden = 3072;
        Add("img_in.weight", hidden, 64);
        Add("img_in.bias", hidden);
        Add("txt_in.weight", hidden, 4096);
        Add("time_in.in_layer.weight", hidden, 256);
        Add("vector_in.in_layer.weight", hidden, 768);
        for (int i = 0; i < doubleBlocks; i++)
        {
            foreach (var stream in new[] { "img", "txt" })
            {
                Add($"double_blocks.{i}.{stream}_attn.qkv.weight", hidden * 3, hidden);
                Add($"double_blocks.{i}.{stream}_attn.proj.weight", hidden, hidden);
                Add($"double_blocks.{i}.{stream}_mlp.0.weight", hidden * 4, hidden);
                Add($"double_blocks.{i}.{stream}_mlp.2.weight", hidden, hidden * 4);
                Add($"double_blocks.{i}.{stream}_mod.lin.weight", hidden * 6, hidden);
            }
        }
        for (int i = 0; i < singleBlocks; i++)
        {
            Add($"single_blocks.{i}.linear1.weight", hidden * 3 + hidden * 4, hidden);
            Add($"single_blocks.{i}.linear2.weight", hidden, hidden + hidden * 4);
            Add($"single_blocks.{i}.modulation.lin.weight", hidden * 3, hidden);
        }
        Add("final_layer.linear.weight", 64, hidden);
        return keys;
    }

    /// <summary>SD3-style denoiser: joint blocks with x/context halves (representative subset of each block).</summary>
    public static List<KeyEntry> SD3Transformer(string prefix = "model.diffusion_model.", TensorDType dtype = TensorDType.F16, int depth = 24)
    {
        var keys = new List<KeyEntry>();
        void Add(string name, params long[] shape) => keys.Add(new KeyEntry(prefix + name, dtype, shape));
        int hidden = 64 * depth;
        Add("x_embedder.proj.weight", hidden, 16, 2, 2);
        Add("context_embedder.weight", hidden, 4096);
        Add("pos_embed", 1, 192 * 192, hidden);
        for (int i = 0; i < depth; i++)
        {
            foreach (var half in new[] { "x_block", "context_block" })
            {
                Add($"joint_blocks.{i}.{half}.attn.qkv.weight", hidden * 3, hidden);
                Add($"joint_blocks.{i}.{half}.mlp.fc1.weight", hidden * 4, hidden);
            }
        }
        Add("final_layer.linear.weight", 64, hidden);
        return keys;
    }
}
