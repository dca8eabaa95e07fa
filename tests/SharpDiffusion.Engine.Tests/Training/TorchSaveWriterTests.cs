using SharpDiffusion.Engine.Training;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>Our torch.save writer read back by the safe torch reader: tensors with their shapes and values, plain values as metadata.</summary>
public class TorchSaveWriterTests
{
    [Fact]
    public void WrittenFileReadsBackWithTensorsAndPlainValues()
    {
        using var dir = new TempDir();
        string path = dir.File("x.pt");
        float[] values = [1.5f, -2f, 3.25f, 0f, 1e-7f, -65504f];
        TorchSaveWriter.Write(path, new TorchSaveWriter.Dict
        {
            { "string_to_token", new TorchSaveWriter.Dict { { "*", 265 } } },
            { "string_to_param", new TorchSaveWriter.Dict { { "*", new TorchSaveWriter.FloatTensor(values, [2, 3]) } } },
            { 320, new TorchSaveWriter.Tuple(new TorchSaveWriter.Dict { { "w", new TorchSaveWriter.FloatTensor([7f], [1]) } }, new TorchSaveWriter.Dict()) },
            { "name", "naïve ✓" },
            { "step", 5_000_000_000L },
            { "flag", true },
            { "none", null },
        });
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
        using var file = ModelFileReader.Open(path);
        Assert.Equal(ModelFormat.TorchZip, file.Format);
        var tensor = file.Tensors.Single(t => t.Name == "string_to_param.*");
        Assert.Equal([2L, 3L], tensor.Shape);
        using (var read = TensorReading.Read(file, tensor, ScalarType.Float32)) Assert.Equal(values, read.data<float>().ToArray());
        using (var w = TensorReading.Read(file, file.Tensors.Single(t => t.Name == "320.0.w"), ScalarType.Float32)) Assert.Equal(7f, w.item<float>());
        Assert.Equal("265", file.Metadata["string_to_token.*"]);
        Assert.Equal("naïve ✓", file.Metadata["name"]);
        Assert.Equal("5000000000", file.Metadata["step"]);
    }
}
