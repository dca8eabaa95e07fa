using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Tests.Embeddings;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

/// <summary><c>generate --models-dir</c>: LoRA, hypernetwork and embedding names in prompts, A1111's extra parameters.</summary>
public sealed class GenerateExtraNetworksCliTests
{

    private static string[] Tiny(params string[] extra) =>
        new[] { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16", "--steps", "2", "--sampler", "Euler", "--seed", "5" }
        .Concat(extra).ToArray();

    private static string ModelsDir(TempDir dir)
    {
        Directory.CreateDirectory(dir.File("models/Lora"));
        Directory.CreateDirectory(dir.File("models/hypernetworks"));
        Directory.CreateDirectory(dir.File("models/embeddings"));
        var g = new Generator(21);
        const string module = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k";
        SafetensorsTestWriter.Write(dir.File("models/Lora/detail.safetensors"), [
            (module + ".lora_down.weight", randn(2, 32, generator: g)),
            (module + ".lora_up.weight", randn(64, 2, generator: g)),
            (module + ".alpha", tensor(2.0f)),
            ("lora_unet_no_such_layer.lora_down.weight", randn(2, 32, generator: g)),
        ]);
        SafetensorsTestWriter.Write(dir.File("models/embeddings/tinytok.safetensors"), [("emb_params", randn(1, 32, generator: g))]);
        File.Copy(TestPaths.GoldenFile("a1111/hypernetworks/tiny_relu.pt"), dir.File("models/hypernetworks/anime.pt"));
        return dir.File("models");
    }

    [Fact]
    public void ParametersKeepTheTagsAndNameTheAppliedNetworksWithTheirHashes()
    {
        using var dir = new TempDir();
        var models = ModelsDir(dir);
        var png = dir.File("out.png");
        var (code, _, stderr) = Run(Tiny("--prompt", "a tinytok cat, <lora:detail:0.8>, <hypernet:anime:0.5>, <lora:gone:1>",
            "--models-dir", models, "--verbose", "--out", png));
        Assert.True(code == 0, stderr);

        var loraHash = LoraShortHash.Short(LoraShortHash.Compute(dir.File("models/Lora/detail.safetensors"), null));
        var tiHash = SharpDiffusion.Engine.Embeddings.FileSha256.TryCompute(dir.File("models/embeddings/tinytok.safetensors"))![..12];
        var parameters = PngTextChunks.Get(PngTextChunks.Read(png), "parameters")!;
        Assert.StartsWith("a tinytok cat, <lora:detail:0.8>, <hypernet:anime:0.5>, <lora:gone:1>\n", parameters);
        Assert.EndsWith($", Model: tiny_sd1, Lora hashes: \"detail: {loraHash}\", TI hashes: \"tinytok: {tiHash}\", Hypernet: anime, Hypernet hash: 8341b81cc6, Hypernet strength: 0.5, Not applied: \"lora:gone (no such file)\"", parameters);
        Assert.Contains("warning: lora gone: no such network", stderr);
        Assert.Contains("lora detail: 1 modules matched, 1 keys unmatched", stderr);
        Assert.Contains("unmatched keys: lora_unet_no_such_layer.lora_down.weight", stderr);
    }

    [Fact]
    public void AMissingModelsFolderIsAUsageError()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Run(Tiny("--prompt", "x", "--models-dir", dir.File("nope"), "--out", dir.File("o.png")));
        Assert.Equal(2, code);
        Assert.Contains("--models-dir", stderr);
        Assert.False(File.Exists(dir.File("o.png")));
    }
}
