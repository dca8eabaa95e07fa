using static SharpDiffusion.Engine.Tests.CliHarness;
using System.Text.Json;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Tests.Embeddings;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

/// <summary>Requested extra networks that were not applied are named, with reasons, in the PNG's parameters.</summary>
public sealed class NotAppliedInfotextTests
{
    private const string UnetModule = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k";

    private static string[] Tiny(params string[] extra) =>
        new[] { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16", "--steps", "2", "--sampler", "Euler", "--seed", "5" }
        .Concat(extra).ToArray();

    /// <summary>
    /// A models folder with a LoRA for the tiny model (good), an SDXL LoRA (xl: clip_g and SDXL U-Net names), a 32-wide
    /// embedding (tinytok), a 48-wide one (widetok), and an SD2 hypernetwork (a 1024-wide context layer only).
    /// </summary>
    private static string ModelsDir(TempDir dir)
    {
        foreach (var sub in new[] { "Lora", "embeddings", "hypernetworks" }) Directory.CreateDirectory(dir.File("models/" + sub));
        var g = new Generator(31);
        SafetensorsTestWriter.Write(dir.File("models/Lora/good.safetensors"), [
            (UnetModule + ".lora_down.weight", randn(2, 32, generator: g)),
            (UnetModule + ".lora_up.weight", randn(64, 2, generator: g)),
            (UnetModule + ".alpha", tensor(2.0f)),
        ]);
        const string xlUnet = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", xlTe = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj";
        SafetensorsTestWriter.Write(dir.File("models/Lora/xl.safetensors"), [
            (xlUnet + ".lora_down.weight", randn(4, 2048, generator: g)),
            (xlUnet + ".lora_up.weight", randn(640, 4, generator: g)),
            (xlUnet + ".alpha", tensor(4.0f)),
            (xlTe + ".lora_down.weight", randn(4, 1280, generator: g)),
            (xlTe + ".lora_up.weight", randn(1280, 4, generator: g)),
            (xlTe + ".alpha", tensor(4.0f)),
        ]);
        SafetensorsTestWriter.Write(dir.File("models/embeddings/tinytok.safetensors"), [("emb_params", randn(1, 32, generator: g))]);
        SafetensorsTestWriter.Write(dir.File("models/embeddings/widetok.safetensors"), [("emb_params", randn(1, 48, generator: g))]);
        // A1111 hypernetworks are pickles; the reader goes by content, so a safetensors file with the same names serves.
        var hypernet = new List<(string, Tensor)>();
        foreach (var side in new[] { "0", "1" })
        {
            hypernet.Add(($"1024.{side}.linear.0.weight", randn(10, 1024, generator: g) * 0.01));
            hypernet.Add(($"1024.{side}.linear.0.bias", zeros(10)));
            hypernet.Add(($"1024.{side}.linear.2.weight", randn(1024, 10, generator: g) * 0.01));
            hypernet.Add(($"1024.{side}.linear.2.bias", zeros(1024)));
        }
        SafetensorsTestWriter.Write(dir.File("models/hypernetworks/sd2only.pt"), hypernet,
            new Dictionary<string, string> { ["layer_structure"] = "[1,0.01,1]", ["activation_func"] = "relu", ["name"] = "sd2only" });
        return dir.File("models");
    }

    private static string Parameters(string png) => PngTextChunks.Get(PngTextChunks.Read(png), A1111Infotext.PngKeyword)!;

    [Fact]
    public void MissingWrongFamilyAndWrongWidthNetworksAreListedWithReasonsAtTheEndOfTheParameters()
    {
        using var dir = new TempDir();
        var models = ModelsDir(dir);
        var png = dir.File("out.png");
        var (code, _, stderr) = Run(Tiny("--prompt", "a widetok cat <lora:missing:1> <lora:xl:0.5> <lora:good:1> <hypernet:sd2only:1>",
            "--models-dir", models, "--verbose", "--out", png));
        Assert.True(code == 0, stderr);
        Assert.Contains("(1 tensors patched, 1 of them restored from the checkpoint file afterwards)", stderr);

        var parameters = Parameters(png);
        const string expected = "lora:missing (no such file), lora:xl (SDXL LoRA on an SD1 model), hypernet:sd2only (SD2 hypernetwork on an SD1 model), "
            + "embedding:widetok (vectors are 48 wide, this model's text encoder takes 32)";
        Assert.EndsWith(", Not applied: " + A1111Infotext.Quote(expected), parameters);
        Assert.Equal(expected, A1111Infotext.Parse(parameters)[NotAppliedNetwork.InfotextKey]);
        // The LoRA that applied is still hashed; the hypernetwork that changes nothing is not claimed.
        Assert.Contains("Lora hashes: \"good: ", parameters);
        Assert.DoesNotContain("Hypernet:", parameters);
        Assert.Contains("warning: lora missing: no such network", stderr);
        Assert.Contains("it has no effect on this model", stderr);
    }

    [Fact]
    public void PngInfoShowsTheFieldAndARerunFromThePngWritesItAgain()
    {
        using var dir = new TempDir();
        var models = ModelsDir(dir);
        var first = dir.File("first.png");
        Assert.Equal(0, Run(Tiny("--prompt", "a cat <lora:missing:1>", "--models-dir", models, "--out", first)).Code);

        var info = Run("pnginfo", first);
        Assert.Equal(0, info.Code);
        Assert.Contains("Not applied: \"lora:missing (no such file)\"", info.Stdout);
        var json = Run("pnginfo", first, "--json");
        using (var doc = JsonDocument.Parse(json.Stdout))
            Assert.Contains("lora:missing (no such file)", doc.RootElement.GetProperty("parameters").GetRawText());

        var again = dir.File("again.png");
        var rerun = Run("generate", "--from-png", first, "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--models-dir", models, "--out", again);
        Assert.True(rerun.Code == 0, rerun.Stderr);
        Assert.Equal(Parameters(first), Parameters(again));
    }

    [Fact]
    public void AnUnreadableEmbeddingNamedInThePromptIsListed()
    {
        using var dir = new TempDir();
        var models = ModelsDir(dir);
        File.WriteAllBytes(dir.File("models/embeddings/brokentok.safetensors"), new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 });
        var png = dir.File("broken.png");
        var (code, _, stderr) = Run(Tiny("--prompt", "a brokentok cat", "--negative", "tinytok", "--models-dir", models, "--out", png));
        Assert.True(code == 0, stderr);
        Assert.Contains("brokentok.safetensors was not loaded", stderr);
        Assert.Equal("embedding:brokentok (unreadable file)", A1111Infotext.Parse(Parameters(png))[NotAppliedNetwork.InfotextKey]);

        // Not named: not listed (the warning still says the file was not loaded).
        var quiet = dir.File("quiet.png");
        Assert.Equal(0, Run(Tiny("--prompt", "a cat", "--models-dir", models, "--out", quiet)).Code);
        Assert.DoesNotContain(NotAppliedNetwork.InfotextKey, Parameters(quiet));
    }

    [Fact]
    public void AJobWhereEverythingAppliesHasNoField()
    {
        using var dir = new TempDir();
        var models = ModelsDir(dir);
        var png = dir.File("ok.png");
        var (code, _, stderr) = Run(Tiny("--prompt", "a tinytok cat <lora:good:0.7>", "--models-dir", models, "--out", png));
        Assert.True(code == 0, stderr);
        var parameters = Parameters(png);
        Assert.Contains("Lora hashes:", parameters);
        Assert.Contains("TI hashes:", parameters);
        Assert.DoesNotContain(NotAppliedNetwork.InfotextKey, parameters);
    }

    [Fact]
    public void TheSessionReportsEachNetworkOnceAndTagsWithoutAModelsFolder()
    {
        using var dir = new TempDir();
        var models = ModelsDir(dir);
        using var model = TinyModel.Load();
        using (var session = new ExtraNetworkSession(model, new ModelsFolder(models)))
        {
            using var run = session.Generate(TinyModel.Request("a cat <lyco:xl:1> <lora:good:1>"));
            var entry = Assert.Single(run.NotApplied);
            Assert.Equal(new NotAppliedNetwork("lyco", "xl", "SDXL LoRA on an SD1 model"), entry);
            Assert.Equal("lyco:xl (SDXL LoRA on an SD1 model)", Assert.Single(run.InfotextFields, f => f.Key == NotAppliedNetwork.InfotextKey).Value);

            // The embedding is skipped for the whole session, but is only "not applied" to a job whose prompt names it.
            using var unnamed = session.Generate(TinyModel.Request("a cat"));
            Assert.Empty(unnamed.NotApplied);
            using var negative = session.Generate(TinyModel.Request("a cat", "widetok, blurry"));
            Assert.Equal("embedding", Assert.Single(negative.NotApplied).Kind);
        }
        using var without = new ExtraNetworkSession(model, null);
        using var bare = without.Generate(TinyModel.Request("a cat <lora:good:1> <hypernet:sd2only:1>"));
        Assert.Equal(["lora:good (no models folder)", "hypernet:sd2only (no models folder)"], bare.NotApplied.Select(n => n.ToString()));
    }
}
