using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Tests.Embeddings;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

/// <summary><c>bake</c>: a checkpoint with a LoRA merged in generates exactly what the LoRA applied on the fly generates.</summary>
public class BakeTests
{

    private static void WriteLora(string path)
    {
        var g = new Generator(11);
        const string unet = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k", te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
        SafetensorsTestWriter.Write(path, new (string, Tensor)[]
        {
            (unet + ".lora_down.weight", randn(2, 32, generator: g)), (unet + ".lora_up.weight", randn(64, 2, generator: g)), (unet + ".alpha", tensor(1.0f)),
            (te + ".lora_down.weight", randn(2, 32, generator: g)), (te + ".lora_up.weight", randn(32, 2, generator: g)), (te + ".alpha", tensor(4.0f)),
        });
    }

    [Fact]
    public void BakedCheckpointGeneratesWhatTheLoraGivesOnTheFly()
    {
        using var dir = new TempDir();
        var models = Directory.CreateDirectory(dir.File("models")).FullName;
        Directory.CreateDirectory(Path.Combine(models, "Lora"));
        var lora = Path.Combine(models, "Lora", "t.safetensors");
        WriteLora(lora);
        var model = TestPaths.GoldenFile("tiny_sd1.safetensors");
        var baked = dir.File("baked.safetensors");

        var bake = Run("bake", "--model", model, "--lora", lora + ":0.8:0.6", "--out", baked);
        Assert.True(bake.Code == 0, bake.Stderr);
        Assert.Contains("2 patched", bake.Stdout);

        string[] Generate(string checkpoint, string prompt, string latents, params string[] extra) => new[]
        {
            "generate", "--model", checkpoint, "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", prompt, "--steps", "3", "--sampler", "Euler", "--seed", "9", "--width", "16", "--height", "16",
            "--out", latents + ".png", "--save-latents", latents,
        }.Concat(extra).ToArray();
        var fromBaked = dir.File("baked-latents.safetensors");
        var onTheFly = dir.File("fly-latents.safetensors");
        var plain = dir.File("plain-latents.safetensors");
        Assert.Equal(0, Run(Generate(baked, "a cat", fromBaked)).Code);
        var fly = Run(Generate(model, "a cat <lora:t:0.8:0.6>", onTheFly, "--models-dir", models));
        Assert.True(fly.Code == 0, fly.Stderr);
        Assert.Equal(0, Run(Generate(model, "a cat", plain)).Code);

        static byte[] Latents(string path)
        {
            using var f = SafetensorsFile.Open(path);
            var bytes = new byte[f.Tensors[0].ByteLength];
            f.ReadTensorData(f.Tensors[0], bytes);
            return bytes;
        }
        Assert.Equal(Latents(onTheFly), Latents(fromBaked));
        Assert.NotEqual(Latents(plain), Latents(fromBaked));

        // The input checkpoint is untouched and the bake is recorded.
        using var output = SafetensorsFile.Open(baked);
        Assert.Contains("t.safetensors", output.Metadata["sharpdiffusion_bake"]);
        Assert.Equal("3b956ae8fc", Hashing.ModelHashes.Compute(model).Short);
    }

    [Fact]
    public void NothingToBakeIsAUsageError()
    {
        using var dir = new TempDir();
        var r = Run("bake", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--out", dir.File("x.safetensors"));
        Assert.Equal(2, r.Code);
        Assert.Contains("nothing to bake", r.Stderr);
        Assert.False(File.Exists(dir.File("x.safetensors")));
    }

    [Fact]
    public void VaeBakeReplacesExactlyTheVaeWeights()
    {
        using var dir = new TempDir();
        var model = TestPaths.GoldenFile("tiny_sd1.safetensors");
        // A VAE file with bare keys: the tiny checkpoint's VAE with every value doubled.
        var vae = dir.File("double.vae.safetensors");
        using (var source = SafetensorsFile.Open(model))
        {
            SafetensorsTestWriter.Write(vae, source.Tensors.Where(t => t.Name.StartsWith("first_stage_model.", StringComparison.Ordinal))
                .Select(t => (t.Name["first_stage_model.".Length..], Weights.TensorReading.Read(source, t) * 2)).ToList());
        }
        var baked = dir.File("baked.safetensors");
        var r = Run("bake", "--model", model, "--vae", vae, "--out", baked);
        Assert.True(r.Code == 0, r.Stderr);
        using var input = SafetensorsFile.Open(model);
        using var output = SafetensorsFile.Open(baked);
        Assert.Equal(input.Tensors.Select(t => t.Name), output.Tensors.Select(t => t.Name));
        foreach (var t in output.Tensors)
        {
            using var expected = Weights.TensorReading.Read(input, input.Tensors.Single(x => x.Name == t.Name));
            using var actual = Weights.TensorReading.Read(output, t);
            var want = t.Name.StartsWith("first_stage_model.", StringComparison.Ordinal) ? expected * 2 : expected;
            Assert.True(actual.equal(want).all().item<bool>(), t.Name);
        }

        var wrong = Run("bake", "--model", model, "--vae", TestPaths.GoldenFile("tiny_sd2v.safetensors"), "--out", dir.File("wrong.safetensors"));
        Assert.Equal(2, wrong.Code);
        Assert.Contains("not a VAE for this model", wrong.Stderr);
        Assert.False(File.Exists(dir.File("wrong.safetensors")));
    }
}
