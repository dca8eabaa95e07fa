using System.Text.Json;
using SharpDiffusion.Formats;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

public sealed class CheckpointConverterTests
{
    private static ConvertResult Convert(string input, string output, TensorDType? precision = null, bool prune = false, bool emaOnly = false) =>
        CheckpointConverter.Convert(new ConvertOptions { Input = input, Output = output, Precision = precision, Prune = prune, EmaOnly = emaOnly });

    /// <summary>The tiny SD1 checkpoint with training leftovers: LitEma copies of every U-Net weight, loss and optimizer tensors.</summary>
    private static CheckpointFixture TrainingCheckpoint(out CheckpointFixture ema)
    {
        var model = CheckpointFixture.Sd1();
        ema = model.Perturbed(11).Where(t => t.Name.StartsWith("model.", StringComparison.Ordinal))
            .Map(t => t with { Name = CheckpointKeys.EmaKeyFor(t.Name)! });
        return model
            .With(ema.Tensors.ToArray())
            .With(CheckpointFixture.Float("model_ema.decay", [], 0.9999f),
                new CheckpointFixture.Tensor("model_ema.num_updates", TensorDType.I32, [], BitConverter.GetBytes(470000)),
                CheckpointFixture.Float("loss.logvar", [1000], 0f),
                CheckpointFixture.Float("optimizer.state.0.exp_avg", [4], 0f));
    }

    [Fact]
    public void Ckpt_to_safetensors_in_fp32_is_bit_exact_with_names_and_order_kept()
    {
        using var dir = new TempDir();
        var model = CheckpointFixture.Sd1();
        var result = Convert(model.WriteCkpt(dir.File("model.ckpt")), dir.File("model.safetensors"));

        var converted = CheckpointFixture.Load(dir.File("model.safetensors"));
        Assert.Equal(model.Tensors.Select(t => t.Name), converted.Tensors.Select(t => t.Name));
        foreach (var t in model.Tensors)
        {
            Assert.Equal(t.DType, converted[t.Name].DType);
            Assert.Equal(t.Shape, converted[t.Name].Shape);
            Assert.Equal(t.Data, converted[t.Name].Data);
        }
        Assert.Equal(0, result.Dropped);
        Assert.Equal("pt", converted.Metadata["format"]);
        using var record = JsonDocument.Parse(converted.Metadata[CheckpointConverter.MetadataKey]);
        Assert.Equal("model.ckpt", record.RootElement.GetProperty("source").GetString());
        Assert.Equal("torch-zip", record.RootElement.GetProperty("source_format").GetString());
    }

    [Theory]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Precision_change_equals_DTypeConversion_and_keeps_integers(TensorDType precision)
    {
        using var dir = new TempDir();
        var model = CheckpointFixture.Sd1().Perturbed(2);
        var result = Convert(model.WriteCkpt(dir.File("model.ckpt")), dir.File("out.safetensors"), precision);

        var converted = CheckpointFixture.Load(dir.File("out.safetensors"));
        foreach (var t in model.Tensors)
        {
            var c = converted[t.Name];
            if (t.DType.IsFloatingPoint())
            {
                Assert.Equal(precision, c.DType);
                Assert.Equal(DTypeConversion.FromSingle(DTypeConversion.ToSingle(t.Data, t.DType), precision), c.Data);
            }
            else
            {
                Assert.Equal(t.DType, c.DType);
                Assert.Equal(t.Data, c.Data);
            }
        }
        Assert.Equal(model.Tensors.Count(t => t.DType.IsFloatingPoint()), result.PrecisionChanged);
        Assert.Equal(TensorDType.I64, converted["cond_stage_model.transformer.text_model.embeddings.position_ids"].DType);
    }

    [Fact]
    public void Prune_drops_EMA_loss_and_optimizer_and_keeps_the_DDPM_buffers()
    {
        using var dir = new TempDir();
        var training = TrainingCheckpoint(out var ema);
        var result = Convert(training.WriteCkpt(dir.File("train.ckpt")), dir.File("pruned.safetensors"), prune: true);

        var pruned = CheckpointFixture.Load(dir.File("pruned.safetensors"));
        Assert.Equal(CheckpointFixture.Sd1().Tensors.Select(t => t.Name), pruned.Tensors.Select(t => t.Name));
        Assert.Contains(pruned.Tensors, t => t.Name == "alphas_cumprod");
        Assert.Equal(ema.Tensors.Count + 4, result.Dropped);
        Assert.Equal(CheckpointFixture.Sd1()["model.diffusion_model.out.2.weight"].Data, pruned["model.diffusion_model.out.2.weight"].Data);
    }

    [Fact]
    public void Ema_only_makes_the_EMA_weights_the_model()
    {
        using var dir = new TempDir();
        var training = TrainingCheckpoint(out var ema);
        var result = Convert(training.WriteCkpt(dir.File("train.ckpt")), dir.File("ema.safetensors"), emaOnly: true);

        var converted = CheckpointFixture.Load(dir.File("ema.safetensors"));
        var names = converted.Tensors.Select(t => t.Name).ToList();
        Assert.DoesNotContain(names, n => n.StartsWith("model_ema.", StringComparison.Ordinal));
        // Without --prune the loss and optimizer tensors stay; every model.* weight now holds its EMA copy.
        Assert.Contains("loss.logvar", names);
        var sd1 = CheckpointFixture.Sd1();
        foreach (var t in sd1.Tensors)
        {
            var expected = t.Name.StartsWith("model.", StringComparison.Ordinal) ? ema[CheckpointKeys.EmaKeyFor(t.Name)!].Data : t.Data;
            Assert.Equal(expected, converted[t.Name].Data);
        }
        Assert.Equal(sd1.Tensors.Count(t => t.Name.StartsWith("model.", StringComparison.Ordinal)), result.FromEma);
        Assert.Equal("model_ema.diffusion_modelinput_blocks00weight", CheckpointKeys.EmaKeyFor("model.diffusion_model.input_blocks.0.0.weight"));
    }

    [Fact]
    public void Ema_only_without_EMA_weights_is_refused()
    {
        using var dir = new TempDir();
        string input = CheckpointFixture.Sd1().WriteSafetensors(dir.File("model.safetensors"));
        var e = Assert.Throws<WorkshopException>(() => Convert(input, dir.File("out.safetensors"), emaOnly: true));
        Assert.Contains("no EMA weights", e.Message);
        Assert.False(File.Exists(dir.File("out.safetensors")));
    }

    [Fact]
    public void The_output_can_never_be_the_input_or_a_link_to_it()
    {
        using var dir = new TempDir();
        string input = CheckpointFixture.Sd1().WriteSafetensors(dir.File("model.safetensors"));
        byte[] before = File.ReadAllBytes(input);
        Assert.Throws<WorkshopException>(() => Convert(input, input, TensorDType.F16));
        File.CreateSymbolicLink(dir.File("link.safetensors"), input);
        var e = Assert.Throws<WorkshopException>(() => Convert(input, dir.File("link.safetensors"), TensorDType.F16));
        Assert.Contains("overwrite the input", e.Message);
        Assert.Equal(before, File.ReadAllBytes(input));
    }
}
