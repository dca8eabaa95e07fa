using SharpDiffusion.Inspection;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Tests.Models;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using System.Runtime.InteropServices;

namespace SharpDiffusion.Engine.Tests.Bench;

/// <summary>
/// Random checkpoints have exactly the real layouts: the SD1.5 plan equals the 1,143 tensors of a real v1-5 file,
/// the tiny plan the golden tiny_sd1 file; a written tiny file carries LDM's DDPM buffers and loads and samples.
/// </summary>
public class RandomModelTests
{
    private static string Describe(TensorInfo t) => $"{t.Name} {t.DType.SafetensorsName()} [{string.Join(",", t.Shape)}]";
    private static string Describe(PlannedTensor t) => $"{t.Name} {t.DType.SafetensorsName()} [{string.Join(",", t.Shape)}]";

    private static void AssertSameTensors(IEnumerable<string> expected, IEnumerable<string> actual)
    {
        var e = expected.ToHashSet(StringComparer.Ordinal);
        var a = actual.ToList();
        Assert.Equal(a.Count, a.Distinct(StringComparer.Ordinal).Count());
        var missing = e.Except(a).OrderBy(x => x, StringComparer.Ordinal).Take(10).ToList();
        var extra = a.Except(e).OrderBy(x => x, StringComparer.Ordinal).Take(10).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0, "missing: " + string.Join("; ", missing) + " | extra: " + string.Join("; ", extra));
    }

    [Fact]
    public void Sd15PlanEqualsTheRealCheckpointInventory()
    {
        using var reference = ReferenceInventory.Load(TestPaths.ReferenceFile("sd15_single_file.tsv"));
        var plan = RandomModel.Plan(RandomModelArchitecture.Sd15, TensorDType.F32);
        Assert.Equal(1143, reference.Tensors.Count);
        Assert.Equal(1143, plan.Count);
        AssertSameTensors(reference.Tensors.Select(Describe), plan.Select(Describe));
    }

    [Fact]
    public void Fp16PlanStoresOnlyModuleWeightsAsFp16()
    {
        var plan = RandomModel.Plan(RandomModelArchitecture.Tiny, TensorDType.F16);
        Assert.Equal(TensorDType.I64, plan.Single(t => t.Name.EndsWith("position_ids", StringComparison.Ordinal)).DType);
        Assert.All(plan.Where(t => RandomModelSchedule.Names.Contains(t.Name)), t => Assert.Equal(TensorDType.F32, t.DType));
        Assert.Equal(12, plan.Count(t => t.DType == TensorDType.F32));
        Assert.Equal(plan.Count - 13, plan.Count(t => t.DType == TensorDType.F16));
    }

    [Fact]
    public void TinyPlanEqualsTheGoldenTinySd1()
    {
        using var golden = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        var plan = RandomModel.Plan(RandomModelArchitecture.Tiny, TensorDType.F32);
        Assert.Equal(381, plan.Count);
        AssertSameTensors(golden.Tensors.Select(Describe), plan.Select(Describe));
    }

    [Fact]
    public void DdpmBuffersEqualThoseLdmWroteIntoTheGoldenCheckpoint()
    {
        using var golden = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        var buffers = RandomModelSchedule.Buffers();
        Assert.Equal(12, buffers.Count);
        foreach (var name in RandomModelSchedule.Names)
        {
            var expected = ReadFloats(golden, name);
            var actual = buffers[name];
            for (int i = 0; i < expected.Length; i++)
            {
                // float64 maths rounded once to float32: equal up to the last float32 bit.
                double tolerance = Math.Abs(expected[i]) * 2e-7 + 1e-30;
                Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{name}[{i}]: {actual[i]:R} vs LDM {expected[i]:R}");
            }
        }
    }

    [Fact]
    public void WrittenTinyModelHasTheLayoutAndLoadsAndSamples()
    {
        using var dir = new TempDir();
        var path = dir.File("tiny.safetensors");
        RandomModel.Write(path, RandomModelArchitecture.Tiny, TensorDType.F16, seed: 7);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));

        using (var file = SafetensorsFile.Open(path))
        {
            AssertSameTensors(RandomModel.Plan(RandomModelArchitecture.Tiny).Select(Describe), file.Tensors.Select(Describe));
            var ids = new byte[77 * 8];
            file.ReadTensorData(file.Tensors.Single(t => t.Name.EndsWith("position_ids", StringComparison.Ordinal)), ids);
            Assert.Equal(Enumerable.Range(0, 77).Select(i => (long)i), MemoryMarshal.Cast<byte, long>(ids).ToArray());
            var ac = ReadFloats(file, "alphas_cumprod");
            Assert.Equal(DiscreteSchedule.ScaledLinear().AlphasCumprod.ToArray(), ac);
            Assert.Equal("tiny", file.Metadata["sharpdiffusion.random_model"]);
        }

        var config = dir.File("tiny.config.json");
        File.WriteAllText(config, RandomModelConfig.Json(RandomModelArchitecture.Tiny));
        using var model = StableDiffusionCheckpoint.Load(path, new CheckpointLoadOptions { ConfigPath = config, TokenizerPath = TestPaths.GoldenFile("clip") });
        Assert.Equal(BaseFamily.SD1, model.Family);
        Assert.Equal(2, model.ClipL!.Heads);
        using var result = ImageGenerator.Generate(model, new GenerationRequest { Prompt = "a red fox", Steps = 2, Width = 16, Height = 16, Seed = 1, Sampler = "Euler" });
        Assert.True(result.Latents.isfinite().all().item<bool>());
        Assert.True(result.Latents.abs().max().item<float>() > 0);
        Assert.Single(result.Images);
    }

    [Fact]
    public void TheSameSeedGivesTheSameFileAndAnotherSeedAnother()
    {
        using var dir = new TempDir();
        RandomModel.Write(dir.File("a.safetensors"), RandomModelArchitecture.Tiny, TensorDType.BF16, seed: 3);
        RandomModel.Write(dir.File("b.safetensors"), RandomModelArchitecture.Tiny, TensorDType.BF16, seed: 3);
        RandomModel.Write(dir.File("c.safetensors"), RandomModelArchitecture.Tiny, TensorDType.BF16, seed: 4);
        var a = File.ReadAllBytes(dir.File("a.safetensors"));
        Assert.Equal(a, File.ReadAllBytes(dir.File("b.safetensors")));
        Assert.NotEqual(a, File.ReadAllBytes(dir.File("c.safetensors")));
    }

    [Fact]
    public void WeightsFollowTheInitScheme()
    {
        using var dir = new TempDir();
        var path = dir.File("tiny.safetensors");
        RandomModel.Write(path, RandomModelArchitecture.Tiny, TensorDType.F32, seed: 11);
        using var file = SafetensorsFile.Open(path);
        // conv_in: 32 x 4 x 3 x 3, fan_in 36 -> std 1/6.
        var conv = ReadFloats(file, "model.diffusion_model.input_blocks.0.0.weight");
        double std = Math.Sqrt(conv.Select(v => (double)v * v).Average());
        Assert.InRange(std, 1 / 6.0 * 0.85, 1 / 6.0 * 1.15);
        Assert.All(ReadFloats(file, "model.diffusion_model.out.0.weight"), v => Assert.Equal(1f, v));
        var bias = ReadFloats(file, "model.diffusion_model.out.2.bias");
        Assert.All(bias, v => Assert.InRange(v, -0.06f, 0.06f));
        Assert.Contains(bias, v => v != 0);
    }

    [Fact]
    public void UnknownArchitecturesAreListed()
    {
        var e = Assert.Throws<ArgumentException>(() => RandomModelArchitecture.Parse("sd3"));
        Assert.Equal("unknown architecture 'sd3': supported are sd15, tiny", e.Message);
        Assert.Same(RandomModelArchitecture.Sd15, RandomModelArchitecture.Parse("SD15"));
        Assert.Throws<ArgumentException>(() => RandomModel.ParsePrecision("int8"));
        Assert.Equal(TensorDType.BF16, RandomModel.ParsePrecision("bf16"));
    }

    private static float[] ReadFloats(IModelFile file, string name)
    {
        var info = file.Tensors.Single(t => t.Name == name);
        Assert.Equal(TensorDType.F32, info.DType);
        var bytes = new byte[info.ByteLength];
        file.ReadTensorData(info, bytes);
        return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
    }
}
