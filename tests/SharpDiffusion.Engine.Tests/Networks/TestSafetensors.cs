using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace SharpDiffusion.Engine.Tests.Networks;

/// <summary>Writes small safetensors files for tests (F32 or F16 data, header in key order).</summary>
internal static class TestSafetensors
{
    public static void Write(string path, IEnumerable<(string Name, string DType, long[] Shape, float[] Values)> tensors)
    {
        var header = new Dictionary<string, object>();
        using var data = new MemoryStream();
        var scratch = new byte[4];
        foreach (var (name, dtype, shape, values) in tensors)
        {
            long start = data.Position;
            foreach (var v in values)
            {
                if (dtype == "F16")
                {
                    BinaryPrimitives.WriteHalfLittleEndian(scratch, (Half)v);
                    data.Write(scratch, 0, 2);
                }
                else
                {
                    BinaryPrimitives.WriteSingleLittleEndian(scratch, v);
                    data.Write(scratch, 0, 4);
                }
            }
            header[name] = new { dtype, shape, data_offsets = new[] { start, data.Position } };
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        file.Write(json);
        data.Position = 0;
        data.CopyTo(file);
    }
}
