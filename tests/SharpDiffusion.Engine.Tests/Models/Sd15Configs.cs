using SharpDiffusion.Engine.Models;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>SD1.5 as v1-inference.yaml describes it.</summary>
internal static class Sd15Configs
{
    public const string V1InferenceYaml = """
        model:
          base_learning_rate: 1.0e-04
          target: ldm.models.diffusion.ddpm.LatentDiffusion
          params:
            linear_start: 0.00085
            linear_end: 0.0120
            num_timesteps_cond: 1
            log_every_t: 200
            timesteps: 1000
            first_stage_key: "jpg"
            cond_stage_key: "txt"
            image_size: 64
            channels: 4
            cond_stage_trainable: false   # Note: different from the one we trained before
            conditioning_key: crossattn
            monitor: val/loss_simple_ema
            scale_factor: 0.18215
            use_ema: False

            scheduler_config: # 10000 warmup steps
              target: ldm.lr_scheduler.LambdaLinearScheduler
              params:
                warm_up_steps: [ 10000 ]
                cycle_lengths: [ 10000000000000 ] # incredibly large number to prevent corner cases
                f_start: [ 1.e-6 ]
                f_max: [ 1. ]
                f_min: [ 1. ]

            unet_config:
              target: ldm.modules.diffusionmodules.openaimodel.UNetModel
              params:
                image_size: 32 # unused
                in_channels: 4
                out_channels: 4
                model_channels: 320
                attention_resolutions: [ 4, 2, 1 ]
                num_res_blocks: 2
                channel_mult: [ 1, 2, 4, 4 ]
                num_heads: 8
                use_spatial_transformer: True
                transformer_depth: 1
                context_dim: 768
                use_checkpoint: True
                legacy: False

            first_stage_config:
              target: ldm.models.autoencoder.AutoencoderKL
              params:
                embed_dim: 4
                monitor: val/rec_loss
                ddconfig:
                  double_z: true
                  z_channels: 4
                  resolution: 256
                  in_channels: 3
                  out_ch: 3
                  ch: 128
                  ch_mult:
                  - 1
                  - 2
                  - 4
                  - 4
                  num_res_blocks: 2
                  attn_resolutions: []
                  dropout: 0.0
                lossconfig:
                  target: torch.nn.Identity

            cond_stage_config:
              target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
        """;

    public static UNetConfig UNet => new()
    {
        InChannels = 4,
        OutChannels = 4,
        ModelChannels = 320,
        ChannelMult = new[] { 1, 2, 4, 4 },
        NumResBlocks = new[] { 2, 2, 2, 2 },
        TransformerDepth = new[] { 1, 1, 1, 0 },
        TransformerDepthMiddle = 1,
        ContextDim = 768,
        NumHeads = 8,
        NumHeadChannels = -1,
    };

    public static VaeConfig Vae => new()
    {
        Ch = 128,
        ChMult = new[] { 1, 2, 4, 4 },
        NumResBlocks = 2,
        AttentionLevels = new[] { false, false, false, false },
        ZChannels = 4,
        EmbedDim = 4,
        ScaleFactor = 0.18215,
    };
}
