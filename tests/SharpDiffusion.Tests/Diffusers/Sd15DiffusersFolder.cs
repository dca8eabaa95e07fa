using SharpDiffusion.Tests.Fixtures;

namespace SharpDiffusion.Tests.Diffusers;

/// <summary>
/// Builds the runwayml/stable-diffusion-v1-5 diffusers layout in a folder: model_index.json, the real configs
/// (abridged to their meaningful keys), and sparse weights with the real SD1.5 tensor inventories.
/// </summary>
internal static class Sd15DiffusersFolder
{
    public static IReadOnlyList<InventoryEntry> Unet => ReferenceInventory.Load("sd15_diffusers_unet.tsv");
    public static IReadOnlyList<InventoryEntry> Vae => ReferenceInventory.Load("sd15_diffusers_vae.tsv");
    public static IReadOnlyList<InventoryEntry> TextEncoder => ReferenceInventory.Load("sd15_diffusers_text_encoder.tsv");

    public static readonly object ModelIndex = new Dictionary<string, object?>
    {
        ["_class_name"] = "StableDiffusionPipeline",
        ["_diffusers_version"] = "0.6.0",
        ["feature_extractor"] = new[] { "transformers", "CLIPImageProcessor" },
        ["safety_checker"] = new[] { "stable_diffusion", "StableDiffusionSafetyChecker" },
        ["scheduler"] = new[] { "diffusers", "PNDMScheduler" },
        ["text_encoder"] = new[] { "transformers", "CLIPTextModel" },
        ["tokenizer"] = new[] { "transformers", "CLIPTokenizer" },
        ["unet"] = new[] { "diffusers", "UNet2DConditionModel" },
        ["vae"] = new[] { "diffusers", "AutoencoderKL" },
    };

    public static readonly object UnetConfig = new Dictionary<string, object?>
    {
        ["_class_name"] = "UNet2DConditionModel",
        ["_diffusers_version"] = "0.6.0",
        ["act_fn"] = "silu",
        ["attention_head_dim"] = 8,
        ["block_out_channels"] = new[] { 320, 640, 1280, 1280 },
        ["center_input_sample"] = false,
        ["cross_attention_dim"] = 768,
        ["down_block_types"] = new[] { "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D" },
        ["in_channels"] = 4,
        ["layers_per_block"] = 2,
        ["norm_eps"] = 1e-05,
        ["out_channels"] = 4,
        ["sample_size"] = 64,
        ["up_block_types"] = new[] { "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D" },
    };

    public static readonly object VaeConfig = new Dictionary<string, object?>
    {
        ["_class_name"] = "AutoencoderKL",
        ["_diffusers_version"] = "0.6.0",
        ["act_fn"] = "silu",
        ["block_out_channels"] = new[] { 128, 256, 512, 512 },
        ["in_channels"] = 3,
        ["latent_channels"] = 4,
        ["layers_per_block"] = 2,
        ["norm_num_groups"] = 32,
        ["out_channels"] = 3,
        ["sample_size"] = 512,
    };

    public static readonly object TextEncoderConfig = new Dictionary<string, object?>
    {
        ["architectures"] = new[] { "CLIPTextModel" },
        ["hidden_act"] = "quick_gelu",
        ["hidden_size"] = 768,
        ["max_position_embeddings"] = 77,
        ["model_type"] = "clip_text_model",
        ["num_hidden_layers"] = 12,
        ["torch_dtype"] = "float32",
        ["vocab_size"] = 49408,
    };

    public static readonly object SchedulerConfig = new Dictionary<string, object?>
    {
        ["_class_name"] = "PNDMScheduler",
        ["beta_end"] = 0.012,
        ["beta_schedule"] = "scaled_linear",
        ["beta_start"] = 0.00085,
        ["num_train_timesteps"] = 1000,
        ["prediction_type"] = "epsilon",
        ["skip_prk_steps"] = true,
        ["trained_betas"] = null,
    };

    /// <summary>Writes the full pipeline folder (safety checker and feature extractor left out, as pruned copies do).</summary>
    public static string Create(string root)
    {
        Directory.CreateDirectory(root);
        SparseSafetensors.WriteJson(Path.Combine(root, "model_index.json"), ModelIndex);
        SparseSafetensors.WriteJson(Path.Combine(root, "scheduler", "scheduler_config.json"), SchedulerConfig);
        SparseSafetensors.WriteJson(Path.Combine(root, "tokenizer", "tokenizer_config.json"), new { model_max_length = 77 });
        CreateComponent(Path.Combine(root, "unet"), UnetConfig, "diffusion_pytorch_model.safetensors", Unet);
        CreateComponent(Path.Combine(root, "vae"), VaeConfig, "diffusion_pytorch_model.safetensors", Vae);
        CreateComponent(Path.Combine(root, "text_encoder"), TextEncoderConfig, "model.safetensors", TextEncoder);
        return root;
    }

    public static string CreateComponent(string folder, object config, string weightFile, IEnumerable<InventoryEntry> tensors)
    {
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), config);
        SparseSafetensors.Create(Path.Combine(folder, weightFile), tensors);
        return folder;
    }
}
