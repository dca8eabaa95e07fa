using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.LoraTools;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Formats;
using static SharpDiffusion.Engine.Tests.LoraTools.LoraToolsFixtures;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.LoraTools;

public sealed class LoraResizerTests
{
    private const string Linear = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj"; // [512, 64]
    private const string TextLinear = "lora_te_text_model_encoder_layers_0_mlp_fc1"; // [128, 32]
    private const string Conv = "lora_unet_down_blocks_0_resnets_0_conv1"; // [32, 32, 3, 3]
    private static readonly double[] SingularValues = [3.0, 2.0, 1.0];

    /// <summary>
    /// A rank-8 module whose up @ down is exactly U diag(3, 2, 1) Vᵀ (orthonormal U, V): up = U diag(s) R, down = R⁺ Vᵀ
    /// with a random full-row-rank R [3, 8], so the true rank is 3 and every kept-energy fraction is known.
    /// </summary>
    private static (Tensor Up, Tensor Down, Tensor Product) RankThreeModule(long outDim, long[] downShape, Generator g)
    {
        long flatIn = downShape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var (u, _) = linalg.qr(randn(outDim, 3, dtype: ScalarType.Float64, generator: g));
        var (v, _) = linalg.qr(randn(flatIn, 3, dtype: ScalarType.Float64, generator: g));
        var r = randn(3, 8, dtype: ScalarType.Float64, generator: g);
        var rPlus = r.t().mm(linalg.inv(r.mm(r.t())));
        var s = tensor(SingularValues, ScalarType.Float64).diag();
        var up = u.mm(s).mm(r);
        var down = rPlus.mm(v.t());
        var product = u.mm(s).mm(v.t());
        return (up.to(ScalarType.Float32), down.reshape(downShape).to(ScalarType.Float32), product.to(ScalarType.Float32));
    }

    /// <summary>Writes a rank-8 LoRA with alpha 4 (scale 0.5) on two linear layers and a 3x3 conv; returns the scaled changes.</summary>
    private static Dictionary<string, Tensor> WriteRankEightLora(string path)
    {
        var g = new Generator(7);
        var tensors = new List<(string, Tensor)>();
        var changes = new Dictionary<string, Tensor>();
        foreach (var (name, outDim, downShape) in new[] { (Linear, 512L, new long[] { 8, 64 }), (TextLinear, 128L, new long[] { 8, 32 }), (Conv, 32L, new long[] { 8, 32, 3, 3 }) })
        {
            var (up, down, product) = RankThreeModule(outDim, downShape, g);
            tensors.Add((name + ".lora_up.weight", downShape.Length == 4 ? up.reshape(outDim, 8, 1, 1) : up));
            tensors.Add((name + ".lora_down.weight", down));
            tensors.Add((name + ".alpha", tensor(4.0f)));
            changes[name] = product * 0.5;
        }
        WriteTensors(path, tensors, new Dictionary<string, string> { ["ss_network_dim"] = "8", ["ss_network_alpha"] = "4.0", ["sshs_model_hash"] = "stale" });
        return changes;
    }

    /// <summary>Each module's change (scale included) as the engine computes it, by module name.</summary>
    private static Dictionary<string, Tensor> Changes(string loraPath)
    {
        using var model = ModelFileReader.Open(TinySd1);
        using var lora = ModelFileReader.Open(loraPath);
        var resolution = NetworkKeyResolver.ForModel(model.Tensors.Select(t => t.Name)).Resolve(lora.Tensors.Select(t => t.Name));
        Assert.Empty(resolution.Unused);
        var result = new Dictionary<string, Tensor>();
        foreach (var module in resolution.Modules)
        {
            using var weights = NetworkModuleWeights.Load(lora, module);
            using var weight = zeros(model.Tensors.Single(t => t.Name == module.Target.WeightKey).Shape);
            using var delta = NetworkWeightMath.Delta(weights, weight, 1.0);
            result[module.Name] = delta.reshape(delta.shape[0], -1).clone();
        }
        return result;
    }

    [Fact]
    public void Resizing_to_the_true_rank_keeps_the_change_and_all_energy()
    {
        using var dir = new TempDir();
        string input = dir.File("rank8.safetensors"), output = dir.File("rank3.safetensors");
        var expected = WriteRankEightLora(input);
        var result = LoraResizer.Resize(input, output, new LoraResizeOptions { Rank = 3 });

        Assert.Equal(3, result.Modules.Count);
        Assert.All(result.Modules, m =>
        {
            Assert.Equal(8, m.OldRank);
            Assert.Equal(3, m.NewRank);
            Assert.Equal(4.0, m.OldAlpha);
            Assert.Equal(1.5, m.NewAlpha, 6); // 4 / 8 * 3: the same scale
            Assert.InRange(m.KeptEnergy, 1 - 1e-6, 1 + 1e-6);
        });
        var changes = Changes(output);
        foreach (var (name, change) in expected)
            Assert.True(MaxAbs(changes[name], change) < 1e-5, $"{name}: {MaxAbs(changes[name], change)}");

        using var file = ModelFileReader.Open(output);
        Assert.Equal(new long[] { 3, 32, 3, 3 }, file.Tensors.Single(t => t.Name == Conv + ".lora_down.weight").Shape);
        Assert.Equal(new long[] { 32, 3, 1, 1 }, file.Tensors.Single(t => t.Name == Conv + ".lora_up.weight").Shape);
        Assert.Equal("3", file.Metadata["ss_network_dim"]);
        Assert.Equal("1.5", file.Metadata["ss_network_alpha"]);
        Assert.StartsWith("dimension is resized from 8 to 3", file.Metadata["ss_training_comment"]);
        Assert.False(file.Metadata.ContainsKey("sshs_model_hash"));
        Assert.InRange(double.Parse(file.Metadata[LoraResizer.EnergyMetadataKey], System.Globalization.CultureInfo.InvariantCulture), 1 - 1e-6, 1 + 1e-6);
    }

    [Fact]
    public void Resizing_below_the_true_rank_reports_the_kept_energy_fraction()
    {
        using var dir = new TempDir();
        string input = dir.File("rank8.safetensors"), output = dir.File("rank1.safetensors");
        var expected = WriteRankEightLora(input);
        var result = LoraResizer.Resize(input, output, new LoraResizeOptions { Rank = 1, OutputDType = TensorDType.BF16 });

        double total = SingularValues.Sum(s => s * s);
        double rankOne = SingularValues[0] * SingularValues[0] / total; // 9 / 14
        Assert.All(result.Modules, m => Assert.Equal(rankOne, m.KeptEnergy, 5));
        Assert.Equal(rankOne, result.MeanKeptEnergy, 5);
        Assert.All(result.Modules, m => Assert.Equal(0.5, m.NewAlpha, 6));

        // The kept change is the best rank-1 approximation: what is lost has norm sqrt(2² + 1²) * scale 0.5.
        var changes = Changes(output);
        foreach (var (name, change) in expected)
        {
            using var lost = (change - changes[name]).to(ScalarType.Float64);
            Assert.Equal(Math.Sqrt(5) * 0.5, lost.norm().item<double>(), 2);
        }
        using var file = ModelFileReader.Open(output);
        Assert.All(file.Tensors, t => Assert.Equal(TensorDType.BF16, t.DType));
    }

    [Fact]
    public void Conv_rank_applies_to_convolutions_and_missing_alpha_means_scale_one()
    {
        using var dir = new TempDir();
        string input = dir.File("noalpha.safetensors"), output = dir.File("out.safetensors");
        var g = new Generator(3);
        var (up, down, product) = RankThreeModule(32, [8, 32, 3, 3], g);
        var (up2, down2, product2) = RankThreeModule(128, [8, 32], g);
        WriteTensors(input, [
            (Conv + ".lora_up.weight", up.reshape(32, 8, 1, 1)), (Conv + ".lora_down.weight", down),
            (TextLinear + ".lora_up.weight", up2), (TextLinear + ".lora_down.weight", down2),
            ("lora_unet_other.hada_w1_a", ones(2, 2)),
        ]);
        var result = LoraResizer.Resize(input, output, new LoraResizeOptions { Rank = 2, ConvRank = 3 });

        var conv = result.Modules.Single(m => m.Name == Conv);
        Assert.Equal(3, conv.NewRank);
        Assert.Null(conv.OldAlpha);
        Assert.Equal(3.0, conv.NewAlpha); // scale 1 kept: alpha = new rank
        Assert.Equal(2, result.Modules.Single(m => m.Name == TextLinear).NewRank);
        Assert.Equal(1, result.CopiedTensors);
        using var file = ModelFileReader.Open(output);
        Assert.Contains(file.Tensors, t => t.Name == Conv + ".alpha");
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_other.hada_w1_a");
        using var model = ModelFileReader.Open(TinySd1);
        var resolution = NetworkKeyResolver.ForModel(model.Tensors.Select(t => t.Name)).Resolve(file.Tensors.Select(t => t.Name));
        var convModule = resolution.Modules.Single(m => m.Name == Conv);
        using var weights = NetworkModuleWeights.Load(file, convModule);
        using var delta = NetworkWeightMath.Delta(weights, zeros(32, 32, 3, 3), 1.0);
        Assert.True(MaxAbs(delta.reshape(32, -1), product) < 1e-5);
    }

    [Fact]
    public void Tucker_mid_is_folded_into_plain_up_and_down()
    {
        using var dir = new TempDir();
        string input = dir.File("cp.safetensors"), output = dir.File("out.safetensors");
        var g = new Generator(11);
        using var up = randn(32, 2, 1, 1, generator: g);
        using var mid = randn(2, 2, 3, 3, generator: g);
        using var down = randn(2, 32, 1, 1, generator: g);
        WriteTensors(input, [(Conv + ".lora_up.weight", up), (Conv + ".lora_mid.weight", mid), (Conv + ".lora_down.weight", down), (Conv + ".alpha", tensor(1.0f))]);
        using var expected = einsum("m n ..., i m, n j -> i j ...", mid, up.flatten(1), down.flatten(1)) * 0.5;

        var result = LoraResizer.Resize(input, output, new LoraResizeOptions { Rank = 8 });
        var module = Assert.Single(result.Modules);
        Assert.Equal(8, module.NewRank); // the true rank is up to 2 * 9; capped at min(out, in) = 32 only
        Assert.Equal(4.0, module.NewAlpha, 6); // 1 / 2 * 8
        using var file = ModelFileReader.Open(output);
        Assert.DoesNotContain(file.Tensors, t => t.Name.EndsWith("lora_mid.weight", StringComparison.Ordinal));
        var changes = Changes(output);
        // Values reach ~10 here: float32 rounding allows 1e-5 relative to the largest.
        double error = MaxAbs(changes[Conv], expected.reshape(32, -1)), largest = expected.abs().max().item<float>();
        Assert.True(error < 1e-5 * largest, $"error {error}, largest value {largest}");
    }

    [Fact]
    public void Input_without_lora_modules_is_invalid_and_nothing_is_written()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<InvalidModelFileException>(() => LoraResizer.Resize(TinySd1, dir.File("out.safetensors"), new LoraResizeOptions { Rank = 2 }));
        Assert.Contains("no LoRA", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
