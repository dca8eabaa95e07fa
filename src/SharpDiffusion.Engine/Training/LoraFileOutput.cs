using SharpDiffusion.Inspection;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// Writes the trained LoRA as kohya does: <c>&lt;module&gt;.lora_down.weight</c>, <c>.lora_up.weight</c> (LyCORIS:
/// <c>.hada_w1_a</c>..., <c>.lokr_w1</c>...), <c>.alpha</c> (float32), kohya's <c>ss_*</c> training metadata, the Stability model-spec keys, and <c>sshs_model_hash</c> /
/// <c>sshs_legacy_hash</c> computed as kohya's <c>precalculate_safetensors_hashes</c> does (the file serialised with
/// only its <c>ss_*</c> metadata: sha256 of the data after the header, and sha256 of bytes 0x100000..0x110000, first 8
/// hex digits). Written to a temporary file and renamed.
/// </summary>
public static class LoraFileOutput
{
    public sealed record TrainingFacts(TrainingDataset Dataset, int Resolution, LoraTrainingOptions Options, DateTimeOffset StartedAt, long Steps,
        long MaxSteps, int Epochs);

    public static void Write(string path, LoraTrainingNetwork network, StableDiffusionCheckpoint checkpoint, TrainingFacts facts)
    {
        var o = facts.Options;
        bool v2 = checkpoint.Family == BaseFamily.SD2; // kohya's ss_v2
        string Num(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        string resolution = $"({facts.Resolution}, {facts.Resolution})";
        var tagFrequency = facts.Dataset.Images.GroupBy(i => Path.GetFileName(Path.GetDirectoryName(i.Path)) ?? "")
            .ToDictionary(g => g.Key, g => g.SelectMany(i => i.KohyaCaption.Split(',').Select(t => t.Trim()).Where(t => t.Length > 0))
                .GroupBy(t => t).ToDictionary(t => t.Key, t => t.Count()));
        string outputName = Path.GetFileNameWithoutExtension(path);
        var n = network.Options;
        // kohya stores network_args as the strings given on its command line.
        var networkArgs = new Dictionary<string, string>();
        if (n.Algorithm != LoraAlgorithm.Lora) networkArgs["algo"] = n.AlgorithmName;
        if (n.ConvRank > 0 || n.Algorithm != LoraAlgorithm.Lora)
        {
            networkArgs["conv_dim"] = n.ConvRank.ToString(CultureInfo.InvariantCulture);
            networkArgs["conv_alpha"] = Num(n.ConvAlpha);
        }
        var metadata = new Dictionary<string, string>
        {
            ["ss_network_module"] = n.Algorithm == LoraAlgorithm.Lora ? "networks.lora" : "lycoris.kohya",
            ["ss_network_dim"] = n.Rank.ToString(CultureInfo.InvariantCulture),
            ["ss_network_alpha"] = Num(n.Alpha),
            ["ss_network_args"] = JsonSerializer.Serialize(networkArgs),
            ["ss_base_model_version"] = BaseModelVersion(checkpoint),
            ["ss_v2"] = v2 ? "True" : "False",
            ["ss_v_parameterization"] = checkpoint.Prediction == Prediction.V ? "True" : "False",
            ["ss_output_name"] = outputName,
            ["ss_sd_model_name"] = Path.GetFileName(checkpoint.Path),
            ["ss_training_started_at"] = Num(facts.StartedAt.ToUnixTimeMilliseconds() / 1000.0),
            ["ss_training_finished_at"] = Num(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0),
            ["ss_steps"] = facts.Steps.ToString(CultureInfo.InvariantCulture),
            ["ss_max_train_steps"] = facts.MaxSteps.ToString(CultureInfo.InvariantCulture),
            ["ss_epoch"] = facts.Epochs.ToString(CultureInfo.InvariantCulture),
            ["ss_num_epochs"] = (o.Epochs ?? facts.Epochs).ToString(CultureInfo.InvariantCulture),
            ["ss_num_train_images"] = facts.Dataset.RepeatedCount.ToString(CultureInfo.InvariantCulture),
            ["ss_resolution"] = resolution,
            ["ss_clip_skip"] = o.ClipSkip > 1 ? o.ClipSkip.ToString(CultureInfo.InvariantCulture) : "None",
            ["ss_tag_frequency"] = JsonSerializer.Serialize(tagFrequency),
            ["ss_learning_rate"] = Num(o.LearningRate),
            ["ss_unet_lr"] = Num(o.UnetLearningRate ?? o.LearningRate),
            ["ss_text_encoder_lr"] = Num(o.TextEncoderLearningRate ?? o.LearningRate),
            ["ss_lr_scheduler"] = o.Schedule,
            ["ss_lr_warmup_steps"] = o.WarmupSteps.ToString(CultureInfo.InvariantCulture),
            ["ss_optimizer"] = o.Optimizer == "lion" ? "lion_pytorch.lion_pytorch.Lion" : "torch.optim.adamw.AdamW",
            ["ss_batch_size_per_device"] = o.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["ss_gradient_accumulation_steps"] = o.GradientAccumulation.ToString(CultureInfo.InvariantCulture),
            ["ss_max_grad_norm"] = Num(o.MaxGradNorm),
            ["ss_seed"] = o.Seed.ToString(CultureInfo.InvariantCulture),
            ["ss_noise_offset"] = o.NoiseOffset > 0 ? Num(o.NoiseOffset) : "None",
            ["ss_min_snr_gamma"] = o.MinSnrGamma is { } g ? Num(g) : "None",
            ["ss_shuffle_caption"] = o.Captions.Shuffle ? "True" : "False",
            ["ss_keep_tokens"] = o.Captions.KeepTokens.ToString(CultureInfo.InvariantCulture),
            ["ss_caption_dropout_rate"] = Num(o.Captions.CaptionDropoutRate),
            ["ss_caption_tag_dropout_rate"] = Num(o.Captions.TagDropoutRate),
            ["ss_network_train_unet_only"] = (!o.TrainTextEncoder).ToString(),
            ["ss_network_train_text_encoder_only"] = (!o.TrainUnet).ToString(),
            ["ss_mixed_precision"] = "no",
            ["ss_cache_latents"] = "True",
            ["ss_enable_bucket"] = "True",
            ["ss_bucket_no_upscale"] = "False",
            ["ss_min_bucket_reso"] = "None",
            ["ss_max_bucket_reso"] = "None",
        };
        var tensors = network.FileTensors(TensorDType.F32).ToList();

        // kohya hashes the file as serialised with its ss_* keys only.
        string scratch = path + ".hash.tmp";
        try
        {
            SafetensorsWriter.Write(scratch, tensors, metadata);
            var (modelHash, legacyHash) = KohyaHashes(scratch);
            metadata["sshs_model_hash"] = modelHash;
            metadata["sshs_legacy_hash"] = legacyHash;
        }
        finally
        {
            File.Delete(scratch);
        }
        metadata["modelspec.sai_model_spec"] = "1.0.0";
        metadata["modelspec.architecture"] = ModelSpecArchitecture(checkpoint) + "/lora";
        metadata["modelspec.implementation"] = "https://github.com/Stability-AI/generative-models";
        metadata["modelspec.title"] = outputName;
        metadata["modelspec.resolution"] = $"{facts.Resolution}x{facts.Resolution}";
        metadata["modelspec.date"] = facts.StartedAt.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture);
        if (checkpoint.Prediction == Prediction.V) metadata["modelspec.prediction_type"] = "v";
        SafetensorsWriter.Write(path, tensors, metadata);
    }

    /// <summary>kohya's <c>ss_base_model_version</c> (sdxl_model_util / train_util constants).</summary>
    private static string BaseModelVersion(StableDiffusionCheckpoint checkpoint) => checkpoint.Family switch
    {
        BaseFamily.SDXL => "sdxl_base_v1-0",
        BaseFamily.SD2 => checkpoint.Prediction == Prediction.V ? "sd_v2_768_v" : "sd_v2",
        _ => "sd_v1",
    };

    private static (string Model, string Legacy) KohyaHashes(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        long headerLength = BitConverter.ToInt64(lengthBytes);
        stream.Position = 8 + headerLength;
        string model = Convert.ToHexStringLower(SHA256.HashData(stream));
        stream.Position = Math.Min(0x100000, stream.Length);
        var block = new byte[0x10000];
        int read = stream.ReadAtLeast(block, block.Length, throwOnEndOfStream: false);
        string legacy = Convert.ToHexStringLower(SHA256.HashData(block.AsSpan(0, read)))[..8];
        return (model, legacy);
    }

    /// <summary>The model spec's architecture id of the base family (a LoRA appends <c>/lora</c>).</summary>
    internal static string ModelSpecArchitecture(StableDiffusionCheckpoint checkpoint) => checkpoint.Family switch
    {
        BaseFamily.SDXL => "stable-diffusion-xl-v1-base",
        BaseFamily.SD2 => checkpoint.Prediction == Prediction.V ? "stable-diffusion-v2-768-v" : "stable-diffusion-v2-512",
        _ => "stable-diffusion-v1",
    };
}
