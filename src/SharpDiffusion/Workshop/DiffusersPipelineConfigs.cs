using System.Globalization;
using System.Text.Json.Nodes;
using SharpDiffusion.Conversion;

namespace SharpDiffusion.Workshop;

/// <summary>
/// The JSON files of an SD1.x diffusers pipeline folder (model_index.json and each component's config), with every
/// size read from the tensors' diffusers names and shapes: channels, levels, layers per block, input channels (4, or 9
/// for inpainting), cross-attention width, text encoder width/depth/MLP/positions/vocabulary. What weights cannot tell
/// takes the value diffusers' own convert_original_stable_diffusion_to_diffusers.py writes for an SD1.x checkpoint: 8
/// attention heads in the U-Net (v1-inference.yaml's num_heads), 64-wide CLIP heads, a 512-pixel default size, group
/// norms of 32, and a PNDM scheduler with the SD1 training schedule.
/// </summary>
public static class DiffusersPipelineConfigs
{
    /// <summary>Version stamped into the configs: the diffusers release whose config keys these files use.</summary>
    public const string DiffusersVersion = "0.27.2";

    /// <summary>SD1's default image size in pixels (diffusers' converter uses 512 for non-v models).</summary>
    public const int ImageSize = 512;

    /// <summary>v1-inference.yaml's num_heads: a fixed head count, which diffusers calls attention_head_dim.</summary>
    public const int Sd1AttentionHeads = 8;

    /// <summary>CLIP's text transformer uses heads 64 wide (openai CLIP: heads = width / 64).</summary>
    public const int ClipHeadWidth = 64;

    /// <summary>model_index.json of a StableDiffusionPipeline without safety checker (as the converter writes it).</summary>
    public static JsonObject ModelIndex() => Sorted(new()
    {
        ["_class_name"] = "StableDiffusionPipeline",
        ["_diffusers_version"] = DiffusersVersion,
        ["feature_extractor"] = new JsonArray(null, null),
        ["requires_safety_checker"] = false,
        ["safety_checker"] = new JsonArray(null, null),
        ["scheduler"] = new JsonArray("diffusers", "PNDMScheduler"),
        ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
        ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
        ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
        ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
    });

    /// <summary>
    /// The converter's scheduler for SD1: a DDIM config (scaled_linear 0.00085..0.012, steps_offset 1, no clipping,
    /// alpha at step 0 not forced to 1) turned into PNDM with skip_prk_steps.
    /// </summary>
    public static JsonObject Scheduler(int trainTimesteps = 1000, string predictionType = "epsilon") => Sorted(new()
    {
        ["_class_name"] = "PNDMScheduler",
        ["_diffusers_version"] = DiffusersVersion,
        ["beta_end"] = 0.012,
        ["beta_schedule"] = "scaled_linear",
        ["beta_start"] = 0.00085,
        ["clip_sample"] = false,
        ["num_train_timesteps"] = trainTimesteps,
        ["prediction_type"] = predictionType,
        ["set_alpha_to_one"] = false,
        ["skip_prk_steps"] = true,
        ["steps_offset"] = 1,
        ["timestep_spacing"] = "leading",
        ["trained_betas"] = null,
    });

    /// <summary>UNet2DConditionModel config from the <c>unet</c> component's diffusers keys and shapes.</summary>
    /// <param name="vaeLevels">The VAE's resolution levels: the latent is 2^(levels-1) times smaller than the image.</param>
    public static JsonObject Unet(IReadOnlyDictionary<string, long[]> shapes, int vaeLevels)
    {
        var layout = UnetLayout.FromDiffusersKeys(shapes.Keys);
        var blockOut = Enumerable.Range(0, layout.Levels).Select(l => Dim(shapes, $"down_blocks.{l}.resnets.0.conv2.weight", 0)).ToArray();
        var crossKey = shapes.Keys.Where(k => k.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal)).Order(StringComparer.Ordinal).FirstOrDefault()
            ?? throw new WorkshopException("the U-Net has no cross-attention (attn2.to_k): not a text-conditioned SD1.x U-Net");
        var projIn = shapes.Keys.FirstOrDefault(k => k.EndsWith(".proj_in.weight", StringComparison.Ordinal));
        int depth = shapes.Keys.Select(k => TransformerIndex(k)).Max() + 1;
        var down = Enumerable.Range(0, layout.Levels).Select(l => layout.HasAttention(l) ? "CrossAttnDownBlock2D" : "DownBlock2D");
        var up = Enumerable.Range(0, layout.Levels).Reverse().Select(l => layout.HasAttention(l) ? "CrossAttnUpBlock2D" : "UpBlock2D");
        return Sorted(new()
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = "silu",
            ["attention_head_dim"] = Sd1AttentionHeads,
            ["block_out_channels"] = Array(blockOut),
            ["center_input_sample"] = false,
            ["cross_attention_dim"] = Dim(shapes, crossKey, 1),
            ["down_block_types"] = Array(down),
            ["downsample_padding"] = 1,
            ["dual_cross_attention"] = false,
            ["flip_sin_to_cos"] = true,
            ["freq_shift"] = 0,
            ["in_channels"] = Dim(shapes, "conv_in.weight", 1),
            ["layers_per_block"] = layout.ResBlocksPerLevel,
            ["mid_block_scale_factor"] = 1,
            ["mid_block_type"] = layout.MidAttention ? "UNetMidBlock2DCrossAttn" : null,
            ["norm_eps"] = 1e-05,
            ["norm_num_groups"] = 32,
            ["only_cross_attention"] = false,
            ["out_channels"] = Dim(shapes, "conv_out.weight", 0),
            ["sample_size"] = ImageSize >> (vaeLevels - 1),
            ["transformer_layers_per_block"] = depth,
            ["up_block_types"] = Array(up),
            ["upcast_attention"] = false,
            ["use_linear_projection"] = projIn != null && shapes[projIn].Length == 2,
        });
    }

    /// <summary>AutoencoderKL config from the <c>vae</c> component's diffusers keys and shapes.</summary>
    public static JsonObject Vae(IReadOnlyDictionary<string, long[]> shapes)
    {
        int levels = CountIndices(shapes.Keys, "encoder.down_blocks.");
        if (levels == 0) throw new WorkshopException("the VAE has no encoder.down_blocks: not an AutoencoderKL");
        var blockOut = Enumerable.Range(0, levels).Select(l => Dim(shapes, $"encoder.down_blocks.{l}.resnets.0.conv2.weight", 0)).ToArray();
        return Sorted(new()
        {
            ["_class_name"] = "AutoencoderKL",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = "silu",
            ["block_out_channels"] = Array(blockOut),
            ["down_block_types"] = Array(Enumerable.Repeat("DownEncoderBlock2D", levels)),
            ["in_channels"] = Dim(shapes, "encoder.conv_in.weight", 1),
            ["latent_channels"] = Dim(shapes, "decoder.conv_in.weight", 1),
            ["layers_per_block"] = CountIndices(shapes.Keys, "encoder.down_blocks.0.resnets."),
            ["norm_num_groups"] = 32,
            ["out_channels"] = Dim(shapes, "decoder.conv_out.weight", 0),
            ["sample_size"] = ImageSize,
            ["scaling_factor"] = 0.18215,
            ["up_block_types"] = Array(Enumerable.Repeat("UpDecoderBlock2D", levels)),
        });
    }

    /// <summary>transformers CLIPTextConfig from the <c>text_encoder</c> component's keys and shapes.</summary>
    /// <param name="torchDtype">"float32", "float16" or "bfloat16": the weights' storage type.</param>
    public static JsonObject TextEncoder(IReadOnlyDictionary<string, long[]> shapes, string torchDtype)
    {
        const string Embeddings = "text_model.embeddings.";
        long hidden = Dim(shapes, Embeddings + "token_embedding.weight", 1);
        return Sorted(new()
        {
            ["architectures"] = new JsonArray("CLIPTextModel"),
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = 0,
            ["dropout"] = 0.0,
            ["eos_token_id"] = 2,
            ["hidden_act"] = "quick_gelu",
            ["hidden_size"] = hidden,
            ["initializer_factor"] = 1.0,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = Dim(shapes, "text_model.encoder.layers.0.mlp.fc1.weight", 0),
            ["layer_norm_eps"] = 1e-05,
            ["max_position_embeddings"] = Dim(shapes, Embeddings + "position_embedding.weight", 0),
            ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = hidden % ClipHeadWidth == 0 ? hidden / ClipHeadWidth : 1,
            ["num_hidden_layers"] = CountIndices(shapes.Keys, "text_model.encoder.layers."),
            ["pad_token_id"] = 1,
            ["projection_dim"] = hidden,
            ["torch_dtype"] = torchDtype,
            ["transformers_version"] = "4.40.0",
            ["vocab_size"] = Dim(shapes, Embeddings + "token_embedding.weight", 0),
        });
    }

    private static long Dim(IReadOnlyDictionary<string, long[]> shapes, string key, int dim)
    {
        if (!shapes.TryGetValue(key, out var shape) || shape.Length <= dim)
            throw new WorkshopException($"tensor '{key}' is missing or has too few dimensions: cannot derive the config");
        return shape[dim];
    }

    /// <summary>One more than the largest <c>N</c> in keys <c>prefix + N + "."...</c>; 0 when there is none.</summary>
    private static int CountIndices(IEnumerable<string> keys, string prefix)
    {
        int count = 0;
        foreach (var key in keys)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int dot = key.IndexOf('.', prefix.Length);
            if (dot > prefix.Length && int.TryParse(key.AsSpan(prefix.Length, dot - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                count = Math.Max(count, n + 1);
        }
        return count;
    }

    private static int TransformerIndex(string key)
    {
        const string Marker = ".transformer_blocks.";
        int at = key.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0) return 0;
        int start = at + Marker.Length, dot = key.IndexOf('.', start);
        return dot > start && int.TryParse(key.AsSpan(start, dot - start), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
    }

    private static JsonArray Array(IEnumerable<long> values) => new([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);

    private static JsonArray Array(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);

    /// <summary>Keys in ordinal order, as diffusers' <c>json.dumps(sort_keys=True)</c> writes them.</summary>
    private static JsonObject Sorted(Dictionary<string, JsonNode?> entries) =>
        new(entries.OrderBy(e => e.Key, StringComparer.Ordinal));
}
