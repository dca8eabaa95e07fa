using System.Text;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary><see cref="DiscreteSchedule.FromCheckpoint"/> on fp16-stored and invalid <c>alphas_cumprod</c> buffers.</summary>
public class ScheduleFromCheckpointTests
{
    /// <summary>Writes a safetensors file holding one 1-D tensor <c>alphas_cumprod</c>.</summary>
    private static string WriteBuffer(TempDir dir, string dtype, byte[] data, int count)
    {
        string header = $"{{\"alphas_cumprod\":{{\"dtype\":\"{dtype}\",\"shape\":[{count}],\"data_offsets\":[0,{data.Length}]}}}}";
        while ((header.Length + 8) % 8 != 0) header += " ";
        var path = dir.File("model.safetensors");
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(Encoding.UTF8.GetBytes(header));
        stream.Write(data);
        return path;
    }

    [Fact]
    public void Fp16BufferIsUsedAsStored()
    {
        using var dir = new TempDir();
        var exact = DiscreteSchedule.ScaledLinear().AlphasCumprod;
        var halves = exact.Select(v => (Half)v).ToArray();
        var bytes = halves.SelectMany(h => BitConverter.GetBytes(h)).ToArray();
        using var file = SafetensorsFile.Open(WriteBuffer(dir, "F16", bytes, halves.Length));
        var schedule = DiscreteSchedule.FromCheckpoint(file);
        Assert.Equal(halves.Select(h => (float)h).ToArray(), schedule.AlphasCumprod);
        Assert.NotEqual(exact, schedule.AlphasCumprod);
        Assert.Equal(14.6146, schedule.SigmaMax, 0.01);
    }

    [Fact]
    public void DecreasingSigmasAreAnInvalidModelFile()
    {
        using var dir = new TempDir();
        var values = new float[] { 0.5f, 0.9f, 0.1f };
        var bytes = values.SelectMany(BitConverter.GetBytes).ToArray();
        var path = WriteBuffer(dir, "F32", bytes, values.Length);
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<InvalidModelFileException>(() => DiscreteSchedule.FromCheckpoint(file));
        Assert.Contains(path, e.Message);
        Assert.Contains("alphas_cumprod", e.Message);
    }
}
