using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Tests.Embeddings;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

/// <summary>
/// A PEFT DoRA file (diffusers' <c>unet.</c>/<c>text_encoder.</c> names, <c>lora_A</c>/<c>lora_B</c> and
/// <c>lora_magnitude_vector</c>, no alpha) shaped for the tiny SD1 model goes through inspection and generation: both
/// read it with the one suffix table, so what <c>inspect</c> calls DoRA is what <c>generate</c> applies.
/// The expected weights are PEFT's formula in float64: W' = W + s·(m ⊙ (W + BA) / ‖W + BA‖ − W), the norm of each
/// output channel over every other dim (<c>DoraLinearLayer.get_weight_norm</c>, <c>DoraConv2dLayer.get_weight_norm</c>).
/// </summary>
public sealed class PeftDoraTests
{
    /// <summary>A non-square linear (out 64, in 32), a square linear and a square 3x3 conv: on the square ones only
    /// the convention tells the output axis from the input one.</summary>
    private static readonly DoraModule[] Modules =
    [
        new("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
            "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight", Out: 64, In: 32, Kernel: 1, Conv: false, TextEncoder: false),
        new("text_encoder.text_model.encoder.layers.0.self_attn.q_proj",
            "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", Out: 32, In: 32, Kernel: 1, Conv: false, TextEncoder: true),
        new("unet.down_blocks.0.resnets.0.conv1",
            "model.diffusion_model.input_blocks.1.0.in_layers.2.weight", Out: 32, In: 32, Kernel: 3, Conv: true, TextEncoder: false),
    ];

    private const int Rank = 2;
    private const double TextEncoderStrength = 0.7, UnetStrength = 0.8;

    private sealed record DoraModule(string Name, string ModelKey, int Out, int In, int Kernel, bool Conv, bool TextEncoder);

    private sealed record DoraTensors(Tensor A, Tensor B, Tensor Magnitude);

    /// <summary>Writes the file: lora_A [r, in(, k, k)], lora_B [out, r(, 1, 1)], magnitude [out] or PEFT's conv [1, out, 1, 1].</summary>
    private static Dictionary<string, DoraTensors> WritePeftDora(string path)
    {
        var g = new Generator(2024);
        var written = new Dictionary<string, DoraTensors>();
        var tensors = new List<(string, Tensor)>();
        foreach (var m in Modules)
        {
            var a = m.Conv ? randn(Rank, m.In, m.Kernel, m.Kernel, generator: g) : randn(Rank, m.In, generator: g);
            var b = m.Conv ? randn(m.Out, Rank, 1, 1, generator: g) : randn(m.Out, Rank, generator: g);
            var magnitude = rand(m.Out, generator: g) + 0.5;
            if (m.Conv) magnitude = magnitude.reshape(1, m.Out, 1, 1);
            written[m.Name] = new DoraTensors(a, b, magnitude);
            tensors.Add((m.Name + ".lora_A.weight", a));
            tensors.Add((m.Name + ".lora_B.weight", b));
            tensors.Add((m.Name + ".lora_magnitude_vector", magnitude));
        }
        SafetensorsTestWriter.Write(path, tensors);
        return written;
    }

    [Fact]
    public void InspectCallsThePeftFileDora()
    {
        using var dir = new TempDir();
        WritePeftDora(dir.File("dora.safetensors"));
        using var file = ModelFileReader.Open(dir.File("dora.safetensors"));
        var verdict = ModelClassifier.Classify(file);
        Assert.Equal(ModelKind.Lora, verdict.Kind);
        var lora = Assert.IsType<LoraDetails>(verdict.Lora);
        Assert.Equal("dora", lora.Algorithm);
        Assert.Equal("peft", lora.Style);
        Assert.Equal(3, lora.Modules);
        Assert.Equal([Rank], lora.Ranks);
        Assert.Contains(verdict.Evidence, e => e.Contains(".lora_magnitude_vector", StringComparison.Ordinal));
    }

    [Fact]
    public void GenerationAppliesPeftDoraOnTheOutputAxis()
    {
        using var dir = new TempDir();
        var dora = WritePeftDora(dir.File("dora.safetensors"));
        using var model = TinyModel.Load();
        var targets = ModelNetworkTargets.For(model);
        var before = Modules.ToDictionary(m => m.Name, m => ToDoubles(targets.Weights[m.ModelKey]));

        using (var applied = AppliedLoras.Apply(targets, [(A1111NetworkTag.Parse($"<lora:dora:{TextEncoderStrength}:{UnetStrength}>"), dir.File("dora.safetensors"))]))
        {
            var report = Assert.Single(applied.Reports);
            Assert.True(report.Applied);
            Assert.Equal(3, report.MatchedModules);
            Assert.Empty(report.UnmatchedKeys);
            Assert.Empty(applied.Warnings);

            foreach (var m in Modules)
            {
                double strength = m.TextEncoder ? TextEncoderStrength : UnetStrength;
                var expected = PeftDora(before[m.Name], dora[m.Name], m, strength, outputAxis: true);
                var actual = ToDoubles(targets.Weights[m.ModelKey]);
                Assert.True(MaxAbsDifference(actual, expected) < 2e-5, $"{m.Name}: {MaxAbsDifference(actual, expected)} from PEFT's formula");
                // The test tells the axes apart: the input-axis norm (kohya dora_scale [1, in]) gives other weights.
                var inputAxis = PeftDora(before[m.Name], dora[m.Name], m, strength, outputAxis: false);
                Assert.True(MaxAbsDifference(actual, inputAxis) > 1e-3, $"{m.Name}: the input-axis norm gives the same weights");
            }
        }
        foreach (var m in Modules) Assert.Equal(before[m.Name], ToDoubles(targets.Weights[m.ModelKey]));
    }

    /// <summary>
    /// PEFT DoRA in float64: C = W + B·A (scale 1: no alpha), D[o, j] = m[o] · C[o, j] / ‖C[o, :]‖ (output axis) or
    /// m[c] · C[o, j] / ‖C[:, c, :]‖ with c the input channel of j (input axis, for the contrast), then W + s·(D − W); j runs over in × k × k.
    /// </summary>
    private static double[] PeftDora(double[] w, DoraTensors t, DoraModule m, double strength, bool outputAxis)
    {
        var a = ToDoubles(t.A);
        var b = ToDoubles(t.B);
        var magnitude = ToDoubles(t.Magnitude);
        int columns = m.In * m.Kernel * m.Kernel;
        var combined = new double[m.Out * columns];
        for (int o = 0; o < m.Out; o++)
        {
            for (int j = 0; j < columns; j++)
            {
                double sum = 0;
                for (int r = 0; r < Rank; r++) sum += b[o * Rank + r] * a[r * columns + j];
                combined[o * columns + j] = w[o * columns + j] + sum;
            }
        }
        var result = new double[combined.Length];
        for (int o = 0; o < m.Out; o++)
        {
            for (int j = 0; j < columns; j++)
            {
                int kernel = m.Kernel * m.Kernel, input = j / kernel;
                double norm = 0;
                if (outputAxis)
                {
                    for (int c = 0; c < columns; c++) norm += combined[o * columns + c] * combined[o * columns + c];
                }
                else
                {
                    for (int p = 0; p < m.Out; p++)
                        for (int k = 0; k < kernel; k++) norm += Math.Pow(combined[p * columns + input * kernel + k], 2);
                }
                double scale = outputAxis ? magnitude[o] : magnitude[input];
                double decomposed = scale * combined[o * columns + j] / Math.Sqrt(norm);
                int i = o * columns + j;
                result[i] = w[i] + strength * (decomposed - w[i]);
            }
        }
        return result;
    }

    private static double[] ToDoubles(Tensor t)
    {
        using var d = t.detach().to(ScalarType.Float64).contiguous().flatten();
        return d.data<double>().ToArray();
    }

    private static double MaxAbsDifference(double[] x, double[] y)
    {
        Assert.Equal(x.Length, y.Length);
        double max = 0;
        for (int i = 0; i < x.Length; i++) max = Math.Max(max, Math.Abs(x[i] - y[i]));
        return max;
    }
}
