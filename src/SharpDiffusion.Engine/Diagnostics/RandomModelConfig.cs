using System.Text.Json.Nodes;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>
/// A json config for a random checkpoint, in the tiny_*.config.json layout <c>LdmConfigFile</c> reads: the LDM
/// tree under "ldm_config" and the text encoder's head count (weights cannot tell it; scaled-down towers do not
/// have 64-wide heads).
/// </summary>
public static class RandomModelConfig
{
    public static string Json(RandomModelArchitecture arch)
    {
        var unet = arch.UNet;
        var vae = arch.Vae;
        var attention = new JsonArray();
        for (int i = 0; i < unet.Levels; i++)
            if (unet.TransformerDepth[i] > 0) attention.Add(1 << i);
        int depth = unet.TransformerDepth.FirstOrDefault(d => d > 0, unet.TransformerDepthMiddle);
        if (unet.TransformerDepth.Any(d => d > 0 && d != depth))
            throw new ArgumentException($"{arch.Name}: per-level transformer depths differ; the LDM config form cannot express that");

        var root = new JsonObject
        {
            ["name"] = "random_" + arch.Name,
            ["text_encoder"] = new JsonObject { ["num_attention_heads"] = arch.TextHeads },
            ["ldm_config"] = new JsonObject
            {
                ["model"] = new JsonObject
                {
                    ["target"] = "ldm.models.diffusion.ddpm.LatentDiffusion",
                    ["params"] = new JsonObject
                    {
                        ["linear_start"] = 0.00085,
                        ["linear_end"] = 0.012,
                        ["timesteps"] = 1000,
                        ["scale_factor"] = vae.ScaleFactor,
                        ["parameterization"] = "eps",
                        ["unet_config"] = new JsonObject
                        {
                            ["target"] = "ldm.modules.diffusionmodules.openaimodel.UNetModel",
                            ["params"] = new JsonObject
                            {
                                ["in_channels"] = unet.InChannels,
                                ["out_channels"] = unet.OutChannels,
                                ["model_channels"] = unet.ModelChannels,
                                ["attention_resolutions"] = attention,
                                ["num_res_blocks"] = new JsonArray(unet.NumResBlocks.Select(n => (JsonNode)n).ToArray()),
                                ["channel_mult"] = new JsonArray(unet.ChannelMult.Select(n => (JsonNode)n).ToArray()),
                                ["num_heads"] = unet.NumHeads,
                                ["num_head_channels"] = unet.NumHeadChannels,
                                ["use_spatial_transformer"] = true,
                                ["transformer_depth"] = depth,
                                ["transformer_depth_middle"] = unet.TransformerDepthMiddle,
                                ["context_dim"] = unet.ContextDim,
                                ["use_linear_in_transformer"] = unet.UseLinearInTransformer,
                                ["legacy"] = false,
                            },
                        },
                        ["first_stage_config"] = new JsonObject
                        {
                            ["target"] = "ldm.models.autoencoder.AutoencoderKL",
                            ["params"] = new JsonObject
                            {
                                ["embed_dim"] = vae.EmbedDim,
                                ["ddconfig"] = new JsonObject
                                {
                                    ["double_z"] = vae.DoubleZ,
                                    ["z_channels"] = vae.ZChannels,
                                    ["resolution"] = 256,
                                    ["in_channels"] = vae.InChannels,
                                    ["out_ch"] = vae.OutChannels,
                                    ["ch"] = vae.Ch,
                                    ["ch_mult"] = new JsonArray(vae.ChMult.Select(n => (JsonNode)n).ToArray()),
                                    ["num_res_blocks"] = vae.NumResBlocks,
                                    ["attn_resolutions"] = new JsonArray(Enumerable.Range(0, vae.Levels)
                                        .Where(i => vae.AttentionLevels[i]).Select(i => (JsonNode)(256 >> i)).ToArray()),
                                    ["dropout"] = 0.0,
                                },
                            },
                        },
                    },
                },
            },
        };
        return root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }
}
