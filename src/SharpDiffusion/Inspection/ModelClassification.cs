namespace SharpDiffusion.Inspection;

/// <summary>
/// The verdict on one model: what it is, which family it belongs to, what it contains, and the evidence
/// (keys, shapes, metadata in plain words) that decided it. Built from names, shapes and metadata only.
/// </summary>
public sealed class ModelClassification
{
    public ModelKind Kind { get; set; }

    /// <summary>Null when the weights cannot tell (a VAE fits several families).</summary>
    public BaseFamily? Base { get; set; }

    /// <summary>Families the file is compatible with when <see cref="Base"/> is null (e.g. a VAE: sd1, sd2, sdxl?).</summary>
    public List<BaseFamily> CompatibleBases { get; } = new();

    /// <summary>Checkpoints/diffusers: text_encoder, text_encoder_2, unet, vae.</summary>
    public List<string> Components { get; } = new();

    /// <summary>fp32, fp16, bf16, fp8, mixed, or a quantization name; null when there are no float weights.</summary>
    public string? Precision { get; set; }

    /// <summary>Number of elements over all tensors (EMA copies included).</summary>
    public long Parameters { get; set; }

    public int Tensors { get; set; }

    /// <summary>U-Net input channels: 4 normal, 9 inpainting, 8 instruct-pix2pix.</summary>
    public int? InputChannels { get; set; }

    /// <summary>"inpaint", "instruct-pix2pix", "v-prediction"... when the weights or metadata say so.</summary>
    public string? Variant { get; set; }

    /// <summary>Checkpoints: true when EMA weights (model_ema.*) are present, false when pruned.</summary>
    public bool? HasEma { get; set; }

    /// <summary>Plain-words reasons: "model.diffusion_model.input_blocks.1.1.proj_in.weight is a 1x1 conv [320,320,1,1] (SD1)".</summary>
    public List<string> Evidence { get; } = new();

    public LoraDetails? Lora { get; set; }
    public EmbeddingDetails? Embedding { get; set; }
    public HypernetworkDetails? Hypernetwork { get; set; }

    /// <summary>Title from metadata (modelspec.title, ss_output_name), when present.</summary>
    public string? Title { get; set; }

    /// <summary>Trigger words (top tags of kohya ss_tag_frequency), most frequent first.</summary>
    public List<string> TriggerWords { get; } = new();
}

/// <summary>A LoRA-family network: algorithm, key style, ranks, alphas, targets and module count.</summary>
public sealed class LoraDetails
{
    /// <summary>lora, locon, loha, lokr, ia3, dora, full, glora.</summary>
    public string Algorithm { get; set; } = "lora";

    /// <summary>kohya, peft, diffusers.</summary>
    public string Style { get; set; } = "kohya";

    /// <summary>Distinct ranks, ascending.</summary>
    public List<int> Ranks { get; } = new();

    /// <summary>Distinct alphas, ascending (empty when the file stores none: then alpha = rank).</summary>
    public List<double> Alphas { get; } = new();

    /// <summary>unet, text_encoder, text_encoder_2.</summary>
    public List<string> Targets { get; } = new();

    public int Modules { get; set; }

    /// <summary>Number of conv modules (LoCon etc.).</summary>
    public int ConvModules { get; set; }

    /// <summary>kohya ss_network_module (networks.lora, lycoris.kohya, ...), when the metadata says.</summary>
    public string? NetworkModule { get; set; }

    /// <summary>LyCORIS algo from ss_network_args, when the metadata says.</summary>
    public string? NetworkAlgo { get; set; }

    /// <summary>conv_dim from ss_network_args (LoCon), when the metadata says.</summary>
    public string? ConvDim { get; set; }

    /// <summary>kohya ss_sd_model_name: the checkpoint it was trained on.</summary>
    public string? BaseModelName { get; set; }
}

/// <summary>A textual-inversion embedding.</summary>
public sealed class EmbeddingDetails
{
    /// <summary>a1111 (string_to_param), emb_params, sdxl (clip_l/clip_g), diffusers (learned_embeds / token keys).</summary>
    public string Layout { get; set; } = "a1111";

    public int Vectors { get; set; }

    /// <summary>Vector widths: [768] SD1, [1024] SD2, [768, 1280] SDXL.</summary>
    public List<int> Dims { get; } = new();

    public string? Token { get; set; }

    public long? Step { get; set; }
}

/// <summary>An A1111 hypernetwork.</summary>
public sealed class HypernetworkDetails
{
    public List<double> LayerStructure { get; } = new();
    public string? Activation { get; set; }
    public bool LayerNorm { get; set; }
    public bool Dropout { get; set; }

    /// <summary>Context widths that have modules (768 SD1, 1024 SD2, 320/640/1280 for self-attention).</summary>
    public List<int> Dims { get; } = new();

    public long? Step { get; set; }
    public string? Name { get; set; }
}
